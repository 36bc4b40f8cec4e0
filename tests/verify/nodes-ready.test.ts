// The seven-step verification against a ready simulated k3s server on a test node (real systemd, OpenSSH,
// sudo): every step passing with its report fields, as root and as a sudo user, through the module and the
// CLI; host-key pinning; a separate agent token; a user-supplied token. Command lines on the host and inside
// the node are sampled throughout and must never hold the token.
// Test node: ver-ready-0 at 198.51.100.11 (this suite's slice: .10–.49).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { STEP_NAMES } from "../../components/verify";
import {
  FAST, SimServer, Samplers, TOKEN_FILE, DATA_DIR, assertFailedAt, assertNoSecretInRun, assertPassed, cli,
  cliArgs, step, verify, WATCHER, SUDO_WATCHER, SSH_EVERY, NODE_EVERY,
} from "./node-harness";

let server: SimServer;
before(async () => {
  server = await SimServer.boot("ver-ready-0", "198.51.100.11");
  await server.start(FAST, { ready: true });
});
after(async () => {
  await server?.close();
});


describe("verification of a ready server on a test node", () => {
  it("passes every step as root, one SSH connection, each step's number, name, attempts, time and detail", async () => {
    const samplers = new Samplers(server);
    await samplers.start();
    const run = await verify(server);
    const secrets = await server.tokenSecrets();
    await samplers.stopAndCheck(secrets, WATCHER);
    assertPassed(run);
    assertNoSecretInRun(run, secrets);
    assert.deepEqual(await server.checkLeftovers(), [], "the node-side check left something behind");
    const { report } = run;
    assert.deepEqual(report.steps.map((s) => s.name), STEP_NAMES);
    for (const s of report.steps) {
      assert.ok(s.attempts === 1, `step ${s.step} needed ${s.attempts} attempts on a ready server`);
      assert.ok(Number.isInteger(s.ms) && s.ms >= 0 && s.ms < 15_000, `step ${s.step}: ${s.ms} ms`);
    }
    const fingerprint = await server.hostKeyFingerprint();
    const token = secrets[0];
    assert.equal(report.token, token);
    assert.equal(report.agentToken, undefined, "node-token and agent-token are the same token");
    assert.equal(report.serverUrl, `https://${server.ip}:6443`);
    assert.equal(report.caHash, token.slice(3, 67));
    assert.equal(report.caHash, await server.sh(`sha256sum ${DATA_DIR}/server/tls/server-ca.crt | cut -d' ' -f1`));
    assert.equal(report.hostKeyFingerprint, fingerprint);
    assert.equal(step(report, 1).detail, `connected, host key ${fingerprint}`);
    assert.equal(step(report, 2).detail, "k3s is active");
    assert.equal(step(report, 3).detail, `node ${server.name} is Ready`);
    assert.equal(step(report, 4).detail, `${DATA_DIR}/server/node-token present (108 characters)`);
    assert.equal(step(report, 5).detail, `full form, CA hash ${report.caHash.slice(0, 12)}…, user server`);
    assert.match(step(report, 6).detail, new RegExp(`^CA pinned \\(sha256 ${report.caHash.slice(0, 12)}…\\), node and server credentials accepted$`));
    assert.equal(step(report, 7).detail, "GET /v1-k3s/readyz: 200 ok");
    // One ⏳ line before and one ✅ line after each step, in order.
    assert.deepEqual(run.progress.map((l) => l.slice(0, l.indexOf("]") + 1)),
      [1, 2, 3, 4, 5, 6, 7].flatMap((n) => [`⏳ [${n}/7]`, `✅ [${n}/7]`]));
  });

  it("passes as the sudo user ubuntu: the node-side check runs under sudo -n and reads the root-only token", async () => {
    assert.equal(await server.sh(`stat -c '%a %U' ${TOKEN_FILE} ${DATA_DIR}/server`), "600 root\n700 root");
    const samplers = new Samplers(server);
    await samplers.start();
    const run = await verify(server, { username: "ubuntu" });
    const secrets = await server.tokenSecrets();
    await samplers.stopAndCheck(secrets, SUDO_WATCHER);
    assertPassed(run);
    assertNoSecretInRun(run, secrets);
    assert.equal(run.report.token, secrets[0]);
  });

  it("finds the node by the server's hostname when no node name is given", async () => {
    const run = await verify(server, { username: "ubuntu", nodeName: undefined });
    assertPassed(run);
    assert.equal(step(run.report, 3).detail, `node ${server.name} is Ready`);
  });

  it("fails step 3 at once, naming sudo, when the SSH user's sudo asks for a password", async () => {
    await server.sh("echo 'ubuntu ALL=(ALL) ALL' > /etc/sudoers.d/91-verify-password && chmod 0440 /etc/sudoers.d/91-verify-password");
    try {
      const run = await verify(server, { username: "ubuntu" });
      assertFailedAt(run, 3, /sudo -n refused.*password is required/);
      assert.equal(step(run.report, 3).attempts, 1, "waiting cannot make sudo work");
    } finally {
      await server.sh("rm -f /etc/sudoers.d/91-verify-password");
    }
  });

  it("accepts the expected host key and refuses any other at step 1, at once", async () => {
    const fingerprint = await server.hostKeyFingerprint();
    assertPassed(await verify(server, { expectedHostKey: fingerprint }));
    const other = "SHA256:" + randomBytes(32).toString("base64").replace(/=+$/, "");
    const run = await verify(server, { expectedHostKey: other });
    assertFailedAt(run, 1, new RegExp(`host key ${fingerprint.replace(/[+/]/g, "\\$&")} of ${server.ip} differs from the expected ${other.replace(/[+/]/g, "\\$&")}`));
    assert.equal(step(run.report, 1).attempts, 1);
    assert.ok(run.ms < 10_000, `a wrong host key took ${run.ms} ms to report`);
  });

  it("checks a separate agent token as user node and returns it", async () => {
    const agentPassword = randomBytes(16).toString("hex");
    await server.start(FAST, { ready: true, config: `node-name: ${server.name}\nagent-token: ${agentPassword}\n` });
    try {
      const samplers = new Samplers(server);
      await samplers.start();
      const run = await verify(server, { username: "ubuntu" });
      const agentFile = `${DATA_DIR}/server/agent-token`;
      const secrets = [...(await server.tokenSecrets()), ...(await server.tokenSecrets(agentFile))];
      await samplers.stopAndCheck(secrets, WATCHER);
      assertPassed(run);
      assertNoSecretInRun(run, secrets);
      assert.equal(await server.sh(`stat -c '%a %F' ${agentFile}`), "600 regular file");
      assert.equal(run.report.agentToken, await server.sh(`cat ${agentFile}`));
      assert.ok(run.report.agentToken?.endsWith(`::node:${agentPassword}`));
      assert.match(step(run.report, 4).detail, /separate agent token/);
      assert.match(step(run.report, 6).detail, /agent token accepted/);
    } finally {
      await server.start(FAST, { ready: true, config: `node-name: ${server.name}\n` });
    }
  });

  it("proves the server took the user-supplied token, and fails step 6 when it holds another", async () => {
    const password = randomBytes(16).toString("hex");
    await server.start(FAST, { ready: true, config: `node-name: ${server.name}\ntoken: ${password}\n` });
    try {
      const run = await verify(server, { expectedToken: password });
      assertPassed(run);
      assert.ok(run.report.token?.endsWith(`::server:${password}`));
      const other = randomBytes(16).toString("hex");
      const wrong = await verify(server, { expectedToken: other });
      assertFailedAt(wrong, 6, /not the expected token/);
      assertNoSecretInRun(wrong, [password, other]);
    } finally {
      await server.start(FAST, { ready: true, config: `node-name: ${server.name}\n` });
    }
  });
});

describe("the command-line samplers themselves", () => {
  it("catch a secret on a short-lived command line inside the node, from the host and from inside", async () => {
    const fake = randomBytes(16).toString("hex");
    const samplers = new Samplers(server);
    await samplers.start();
    await server.sh(`bash -c 'sleep 0.5' ${fake}`);
    const seen = await samplers.stop([fake]);
    assert.deepEqual(seen, { host: [fake], node: [fake], nodeSamples: seen.nodeSamples });
    assert.ok(seen.nodeSamples > 5, `the node's sampler took ${seen.nodeSamples} samples`);
  });
});

describe("verify-server-token-ready.sh against a ready server", () => {
  it("exits 0, stdout is only TOKEN:<token>, stderr has a ⏳ and a ✅ line per step, as ubuntu", async () => {
    const samplers = new Samplers(server);
    await samplers.start();
    const r = await cli(cliArgs(server, "ubuntu"));
    const secrets = await server.tokenSecrets();
    await samplers.stopAndCheck(secrets, SUDO_WATCHER);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `TOKEN:${secrets[0]}\n`);
    const lines = r.stderr.trimEnd().split("\n");
    for (const [i, name] of STEP_NAMES.entries()) {
      const every = (i === 0 ? SSH_EVERY : NODE_EVERY).replace(/\./g, "\\.");
      assert.match(lines[2 * i], new RegExp(`^⏳ \\[${i + 1}/7\\] ${name}: waiting up to \\d+s, ${every}$`));
      assert.match(lines[2 * i + 1], new RegExp(`^✅ \\[${i + 1}/7\\] ${name}: .* \\(1 attempt, \\d+ ms\\)$`));
    }
    assert.match(lines[14], new RegExp(`^✅ server https://${server.ip.replace(/\./g, "\\.")}:6443 is ready for agents \\(host key SHA256:`));
    assert.equal(lines.length, 15, r.stderr);
    for (const s of secrets) assert.ok(!r.stderr.includes(s), "stderr holds the token");
  });

  it("prints the report as JSON with --json; the token only in its token field and the TOKEN line", async () => {
    const r = await cli(cliArgs(server, "root", "--json"));
    assert.equal(r.code, 0, r.stderr);
    const secrets = await server.tokenSecrets();
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.pop(), `TOKEN:${secrets[0]}`);
    const report = JSON.parse(lines.join("\n"));
    assert.equal(report.ok, true);
    assert.equal(report.token, secrets[0]);
    assert.equal(report.steps.length, 7);
    const { token: _t, agentToken: _a, ...rest } = report;
    for (const s of secrets) assert.ok(!JSON.stringify(rest).includes(s));
  });

  it("exits 1 naming step 1 when the host key is not the one given with --expected-host-key", async () => {
    const other = "SHA256:" + randomBytes(32).toString("base64").replace(/=+$/, "");
    const r = await cli(cliArgs(server, "root", "--expected-host-key", other));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /❌ step 1 \(SSH connectivity\) failed: host key SHA256:\S+ of 198\.51\.100\.11 differs from the expected/);
    assert.equal(r.stdout, "");
  });
});
