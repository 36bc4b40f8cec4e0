// Faults of a simulated k3s server on a test node, each failing at the right step with the right message,
// through the module and the CLI (exit 1 naming the step and reason, no TOKEN line): a failed service, a
// server or node that never gets ready (timed out, naming what was waited for), a CA that is not the
// token's, a password the server refuses, malformed and short tokens. Failures that waiting cannot fix
// are reported at once, not after the deadline. The token's password never shows in stderr or messages.
// Test nodes: ver-faults-0 at 198.51.100.13 and ver-faults-1 at .14, so the two cases that wait out the
// deadline run side by side (this suite's slice: .10–.49).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  FAST, MIN_TIMEOUT_S, SimServer, Samplers, assertFailedAt, assertNoSecretInRun, cli, cliArgs, step, verify,
  type CliResult, WATCHER, SUDO_WATCHER, NODE_EVERY,
} from "./node-harness";

let server: SimServer;
let second: SimServer;
before(async () => {
  [server, second] = await Promise.all([
    SimServer.boot("ver-faults-0", "198.51.100.13"), SimServer.boot("ver-faults-1", "198.51.100.14"),
  ]);
});
after(async () => {
  await Promise.all([server?.close(), second?.close()]);
});

/** A fault waiting cannot fix must be reported well before the deadline (the first attempt fails it). */
const AT_ONCE_MS = 10_000;

function assertCliFailed(r: CliResult, n: number, name: string, reason: RegExp, secrets: string[]): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, "", "no TOKEN line (nor anything else) on stdout");
  const last = r.stderr.trimEnd().split("\n").pop() ?? "";
  assert.match(last, new RegExp(`^❌ step ${n} \\(${name}\\) failed: `));
  assert.match(last, reason);
  for (const s of secrets.filter((x) => x.length >= 16)) assert.ok(!r.stderr.includes(s), "stderr holds the token");
}

describe("faults, each failing at its step", () => {
  it("a failed k3s service fails step 2 at once (module and CLI)", async () => {
    await server.start({ ...FAST, faults: { exitAtStart: 1 } }, { restart: "no" });
    await server.waitFor("systemctl is-active k3s", "failed", 10);
    const run = await verify(server);
    assertFailedAt(run, 2, /^k3s service failed \(systemctl is-active k3s: failed\)$/);
    assert.equal(step(run.report, 2).attempts, 1);
    assert.ok(run.ms < AT_ONCE_MS, `took ${run.ms} ms`);
    const r = await cli(cliArgs(server, "root"));
    assertCliFailed(r, 2, "k3s service active", /k3s service failed/, []);
  });

  it("CA mismatch: step 6 fails at once with k3s's message (module and CLI)", async () => {
    await server.start({ ...FAST, faults: { caMismatch: true } }, { ready: true });
    const samplers = new Samplers(server);
    await samplers.start();
    const run = await verify(server, { username: "ubuntu" });
    const secrets = await server.tokenSecrets();
    await samplers.stopAndCheck(secrets, SUDO_WATCHER);
    assertFailedAt(run, 6, /^token CA hash does not match the Cluster CA certificate hash: [0-9a-f]{64} != [0-9a-f]{64} \(wrong cluster or a man in the middle\)$/);
    assert.equal(step(run.report, 6).attempts, 1, "a CA mismatch is not retried");
    assert.ok(run.ms < AT_ONCE_MS, `took ${run.ms} ms`);
    assertNoSecretInRun(run, secrets);
    const r = await cli(cliArgs(server, "root"));
    assertCliFailed(r, 6, "Authentication", /token CA hash does not match/, secrets);
  });

  it("wrong password: step 6 fails at once naming 401 (module and CLI)", async () => {
    await server.start({ ...FAST, faults: { wrongPassword: true } }, { ready: true });
    const samplers = new Samplers(server);
    await samplers.start();
    const run = await verify(server);
    const secrets = await server.tokenSecrets();
    await samplers.stopAndCheck(secrets, WATCHER);
    assertFailedAt(run, 6, /^GET \/v1-k3s\/config as node: 401 Unauthorized \(wrong password\)$/);
    assert.equal(step(run.report, 6).attempts, 1);
    assert.ok(run.ms < AT_ONCE_MS, `took ${run.ms} ms`);
    assertNoSecretInRun(run, secrets);
    const r = await cli(cliArgs(server, "ubuntu"));
    assertCliFailed(r, 6, "Authentication", /401/, secrets);
  });

  it("malformed token: step 5 fails at once with the token grammar's message (module and CLI)", async () => {
    const password = randomBytes(16).toString("hex");
    await server.start({ ...FAST, faults: { malformedToken: `K10abc::server:${password}\n` } }, { ready: true });
    const run = await verify(server);
    assertFailedAt(run, 5, /^token is not valid: invalid token CA hash length$/);
    assert.ok(run.ms < AT_ONCE_MS, `took ${run.ms} ms`);
    assertNoSecretInRun(run, [password]);
    const r = await cli(cliArgs(server, "ubuntu"));
    assertCliFailed(r, 5, "Token format", /invalid token CA hash length/, [password]);
  });

  it("a token with a hash but no password fails step 5 with k3s's 'invalid token format'", async () => {
    await server.start({ ...FAST, faults: { malformedToken: `K10${"a".repeat(64)}::server\n` } }, { ready: true });
    const run = await verify(server);
    assertFailedAt(run, 5, /^token is not valid: invalid token format$/);
  });

  it("a short token (a bare password) fails step 5: it cannot pin the cluster CA", async () => {
    const password = randomBytes(16).toString("hex");
    await server.start({ ...FAST, faults: { malformedToken: `${password}\n` } }, { ready: true });
    const run = await verify(server);
    assertFailedAt(run, 5, /carries no CA hash and cannot pin the cluster CA/);
    assertNoSecretInRun(run, [password]);
  });
});

describe("servers that never get ready, each waiting out the deadline (side by side)", { concurrency: 2 }, () => {
  it("k3s never ready: the CLI times out at step 2 naming the state it waited on, and exits 1", async () => {
    await second.start({ ...FAST, faults: { apiNeverReady: true } });
    const r = await cli(cliArgs(second, "ubuntu"));
    assertCliFailed(r, 2, "k3s service active", /failed: timed out after \d+ s: k3s service is activating$/, await second.tokenSecrets());
    assert.match(r.stderr, new RegExp(`^⏳ \\[2/7\\] k3s service active: waiting up to (29|30)s, ${NODE_EVERY.replace(/\./g, "\\.")}$`, "m"));
    assert.ok(r.ms >= (MIN_TIMEOUT_S - 1) * 1000, `gave up after ${r.ms} ms, before the ${MIN_TIMEOUT_S} s deadline`);
    assert.deepEqual(await second.checkLeftovers(), [], "the node-side check outlived the deadline");
  });

  it("the node never Ready: step 3 times out naming the node and its Ready status", async () => {
    await server.start({ ...FAST, faults: { nodeNeverReady: true } });
    const run = await verify(server);
    assertFailedAt(run, 3, new RegExp(`^timed out after \\d+ s: node ${server.name} Ready=False$`));
    assert.ok(step(run.report, 3).attempts > 10, `step 3 tried ${step(run.report, 3).attempts} times`);
    assert.ok(run.ms >= (MIN_TIMEOUT_S - 1) * 1000, `gave up after ${run.ms} ms`);
    assertNoSecretInRun(run, await server.tokenSecrets());
    assert.deepEqual(await server.checkLeftovers(), [], "the node-side check outlived the deadline");
  });
});
