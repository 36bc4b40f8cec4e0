// A server that is still starting, or briefly unavailable, is waited for: each timed phase of a starting
// k3s (activating → active, NotReady → Ready), a token that shows up late, an API answering 503 after a
// restart and sshd down for a few seconds each make their step retry and the verification pass within the
// deadline. Also proves the simulator's Type=notify READY=1 under real systemd: the unit stays activating
// until the simulated API is ready.
// Test node: ver-phases-0 at 198.51.100.12 (this suite's slice: .10–.49).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  FAST, SimServer, Samplers, TOKEN_FILE, assertNoSecretInRun, assertPassed, cli, cliArgs, step, verify,
  WATCHER, SUDO_WATCHER, NODE_EVERY,
} from "./node-harness";

let server: SimServer;
before(async () => {
  server = await SimServer.boot("ver-phases-0", "198.51.100.12");
});
after(async () => {
  await server?.close();
});

/** Seconds from the unit's process start to systemd marking it active (READY=1 for Type=notify). */
async function secondsToActive(): Promise<number> {
  const out = await server.sh("systemctl show k3s -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic");
  const v = Object.fromEntries(out.split("\n").map((l) => l.split("=") as [string, string]));
  return (Number(v.ActiveEnterTimestampMonotonic) - Number(v.ExecMainStartTimestampMonotonic)) / 1e6;
}

/** The journal's position now, to read only what is logged afterwards. */
async function journalCursor(): Promise<string> {
  const out = await server.sh("journalctl -n 1 --show-cursor -o cat --no-pager");
  const cursor = /^-- cursor: (.+)$/m.exec(out)?.[1];
  assert.ok(cursor, `no journal cursor in: ${out}`);
  return cursor;
}

describe("timed phases of a starting server, each recovering within the deadline", () => {
  it("activating → active: step 2 is retried until k3s sends READY=1 (Type=notify under systemd)", async () => {
    await server.start({ ...FAST, apiReadyDelay: 4 });
    assert.equal(await server.sh("systemctl is-active k3s || true"), "activating");
    const samplers = new Samplers(server);
    await samplers.start();
    const run = await verify(server);
    const secrets = await server.tokenSecrets();
    await samplers.stopAndCheck(secrets, WATCHER);
    assertPassed(run);
    assertNoSecretInRun(run, secrets);
    assert.ok(step(run.report, 2).attempts >= 3, `step 2: ${JSON.stringify(step(run.report, 2))}`);
    const active = await secondsToActive();
    assert.ok(active >= 4, `systemd marked k3s active ${active} s after start, before the simulated API was ready`);
  });

  it("NotReady → Ready: step 3 is retried until the server's own node turns Ready", async () => {
    await server.start({ ...FAST, nodeReadyDelay: 4 });
    const run = await verify(server);
    assertPassed(run);
    assert.ok(step(run.report, 3).attempts >= 3, `step 3: ${JSON.stringify(step(run.report, 3))}`);
    assertNoSecretInRun(run, await server.tokenSecrets());
  });

  it("a token that appears late: step 4 is retried until node-token can be read", async () => {
    await server.start(FAST, { ready: true });
    // k3s writes the token before it is ready; taking it away stands in for a data dir restored late.
    await server.sh(`mv ${TOKEN_FILE} ${TOKEN_FILE}.held`);
    await server.later(`sleep 3; mv ${TOKEN_FILE}.held ${TOKEN_FILE}`);
    const run = await verify(server, { username: "ubuntu" });
    assertPassed(run);
    assert.ok(step(run.report, 4).attempts >= 3, `step 4: ${JSON.stringify(step(run.report, 4))}`);
    const secrets = await server.tokenSecrets();
    assert.equal(run.report.token, secrets[0]);
    assertNoSecretInRun(run, secrets);
  });

  it("API 503 → ok: k3s restarted during the verification, step 7 is retried until /v1-k3s/readyz answers 200", async () => {
    const knobs = { ...FAST, apiReadyDelay: 4 };
    await server.start(knobs, { ready: true });
    const before = await server.tokenSecrets();
    const cursor = await journalCursor();
    // Step 4 cannot pass until the restarted k3s rewrites the token, so steps 5–7 meet the new process
    // while its API is still starting: supervisor endpoints answer, /v1-k3s/readyz says 503.
    await server.sh(`mv ${TOKEN_FILE} ${TOKEN_FILE}.held`);
    let restart: Promise<unknown> | undefined;
    const run = await verify(server, {
      onLine: (line) => {
        if (!restart && line.startsWith("⏳ [4/7]")) restart = server.sh("systemctl restart --no-block k3s");
      },
    });
    await restart;
    assertPassed(run);
    assert.ok(step(run.report, 7).attempts >= 3, `step 7: ${JSON.stringify(step(run.report, 7))}`);
    assert.equal(run.report.token, before[0], "a restarted k3s keeps its token");
    const log = await server.sh(`journalctl -u k3s -o cat --no-pager --after-cursor='${cursor}'`);
    assert.match(log, /Received SIGTERM, shutting down[\s\S]*k3s is up and running/, "k3s was restarted during the run");
    assertNoSecretInRun(run, before);
  });

  it("sshd down for a few seconds: step 1 is retried until it accepts connections again", async () => {
    await server.start(FAST, { ready: true });
    await server.sh("systemctl stop ssh.service");
    await server.later("sleep 4; systemctl start ssh.service");
    const run = await verify(server);
    assertPassed(run, step(run.report, 1).attempts);
    assert.ok(step(run.report, 1).attempts > 1, `step 1: ${JSON.stringify(step(run.report, 1))}`);
    assert.ok(step(run.report, 1).ms >= 3_000, `step 1 passed after ${step(run.report, 1).ms} ms, sshd was down for 4 s`);
  });

  it("the CLI waits through a starting server, says what each waiting step waits for, and exits 0", async () => {
    await server.start({ ...FAST, apiReadyDelay: 3 });
    const samplers = new Samplers(server);
    await samplers.start();
    const r = await cli(cliArgs(server, "ubuntu"));
    const secrets = await server.tokenSecrets();
    await samplers.stopAndCheck(secrets, SUDO_WATCHER);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `TOKEN:${secrets[0]}\n`);
    assert.match(r.stderr, new RegExp(`^⏳ \\[2/7\\] k3s service active: waiting up to (29|30)s, ${NODE_EVERY.replace(/\./g, "\\.")}$`, "m"));
    const attempts = Number(/^✅ \[2\/7\] k3s service active: k3s is active \((\d+) attempts, \d+ ms\)$/m.exec(r.stderr)?.[1]);
    assert.ok(attempts >= 3, r.stderr);
    for (const s of secrets) assert.ok(!r.stderr.includes(s), "stderr holds the token");
  });
});
