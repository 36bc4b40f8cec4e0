// The seven-step verification against a simulated k3s server on a test node (real systemd, OpenSSH and
// sudo): every step passing, each timed phase recovering within the deadline, and each fault failing at
// the right step with the right message — through the module and through the CLI. The token's password
// must never show in progress lines, messages or any process's command line.
// Test node: 198.51.100.10 (this suite's slice: .10–.49).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { verifyServerToken, type VerificationReport } from "../../components/verify";
import { startNodes, testSshKey, type TestNode } from "../rig/nodes";
import { installSimulatedK3s, startSimulatedK3s, type SimKnobs } from "../helpers/simulated-k3s";
import { CommandLineSampler } from "../e2e/evidence";

const IP = "198.51.100.10";
const NAME = "ver-server-0";
const FAST: SimKnobs = { tokenDelay: 0.3, apiReadyDelay: 1, nodeReadyDelay: 0.3 };
const CLI = path.resolve(__dirname, "../../scripts/verify-server-token-ready.sh");

let node: TestNode;
before(async () => {
  [node] = await startNodes([{ name: NAME, ip: IP }]);
  await installSimulatedK3s(node);
});
after(async () => {
  await node?.stop();
});

interface Run { report: VerificationReport; progress: string[]; ms: number; cmdlineLeaks: string[] }

async function onNode(cmd: string): Promise<string> {
  const r = await node.exec(cmd);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** Runs the module once while sampling every command line on the machine (the node's included). */
async function verify(opts: { username?: string; timeout?: number; expectedHostKey?: string; secrets?: () => Promise<string[]> } = {}): Promise<Run> {
  const sampler = new CommandLineSampler();
  const progress: string[] = [];
  sampler.start(20);
  const t0 = Date.now();
  const report = await verifyServerToken({
    host: IP, username: opts.username ?? "root", privateKey: testSshKey().privateKey, nodeName: NAME,
    timeoutSeconds: opts.timeout ?? 30, intervalSeconds: 0.5, expectedHostKey: opts.expectedHostKey,
    onProgress: (line) => progress.push(line),
  });
  const ms = Date.now() - t0;
  sampler.stop();
  const secrets = (await (opts.secrets ?? tokenSecrets)()).filter((s) => s.length >= 16);
  for (const s of secrets) {
    assert.ok(!progress.join("\n").includes(s), "a progress line holds the token's password");
    for (const step of report.steps) assert.ok(!step.detail.includes(s), `step ${step.step}'s detail holds the password`);
  }
  return { report, progress, ms, cmdlineLeaks: sampler.findings(secrets).leaks };
}

/** The token's password as the server holds it (empty before k3s wrote it). */
async function tokenSecrets(): Promise<string[]> {
  const r = await node.exec("cat /var/lib/rancher/k3s/server/token 2>/dev/null || true");
  const token = r.stdout.trim();
  return token ? [token, token.split(":").pop()!] : [];
}

function step(report: VerificationReport, n: number) {
  return report.steps.find((s) => s.step === n)!;
}

function assertFailedAt(run: Run, n: number, detail: RegExp) {
  assert.equal(run.report.ok, false);
  assert.equal(run.report.failedStep, n, JSON.stringify(run.report.steps));
  assert.match(step(run.report, n).detail, detail);
  assert.equal(run.report.token, undefined, "a failed verification returns no token");
}

describe("seven-step verification on a test node", () => {
  it("passes every step on a ready server, as root, over one SSH connection", async () => {
    await startSimulatedK3s(node, FAST);
    const run = await verify();
    assert.equal(run.report.ok, true, JSON.stringify(run.report.steps));
    assert.deepEqual(run.report.steps.map((s) => [s.step, s.ok]), [1, 2, 3, 4, 5, 6, 7].map((n) => [n, true]));
    assert.equal(run.report.token, await onNode("cat /var/lib/rancher/k3s/server/token"));
    assert.equal(run.report.serverUrl, `https://${IP}:6443`);
    assert.match(run.report.caHash, /^[0-9a-f]{64}$/);
    const fingerprint = await onNode("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2");
    assert.equal(run.report.hostKeyFingerprint, fingerprint);
    assert.equal(run.report.sshConnections, 1);
    assert.ok(run.report.steps.every((s) => s.attempts >= 1 && s.ms >= 0 && s.detail.length > 0));
    assert.deepEqual(run.cmdlineLeaks, []);
  });

  it("passes as a sudo user (the token file is root 0600) and pins the expected host key", async () => {
    const fingerprint = await onNode("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2");
    const run = await verify({ username: "ubuntu", expectedHostKey: fingerprint });
    assert.equal(run.report.ok, true, JSON.stringify(run.report.steps));
    assert.equal(await onNode("stat -c %a /var/lib/rancher/k3s/server/token"), "600");
    assert.deepEqual(run.cmdlineLeaks, []);
  });

  it("refuses a host key other than the expected one at step 1, at once", async () => {
    const run = await verify({ expectedHostKey: "SHA256:" + "A".repeat(43) });
    assertFailedAt(run, 1, /host key/i);
    assert.ok(run.ms < 10_000, `took ${run.ms} ms`);
  });

  it("waits through activating, a late token, API 503 and NotReady, within the deadline", async () => {
    await startSimulatedK3s(node, { tokenDelay: 2, apiReadyDelay: 4, nodeReadyDelay: 2 });
    const run = await verify();
    assert.equal(run.report.ok, true, JSON.stringify(run.report.steps));
    assert.ok(step(run.report, 2).attempts > 1, "step 2 retried while k3s was activating");
    assert.ok(step(run.report, 3).attempts > 1, "step 3 retried while the node was NotReady");
    assert.ok(run.progress.some((l) => /waiting|retry|activating|NotReady|Ready=False/i.test(l)), run.progress.join("\n"));
    assert.deepEqual(run.cmdlineLeaks, []);
  });

  it("reports a failed k3s service at step 2 without waiting out the deadline", async () => {
    await startSimulatedK3s(node, { ...FAST, faults: { exitAtStart: 1 } }, { restart: "no" });
    await onNode("for i in $(seq 1 50); do [ \"$(systemctl is-active k3s)\" = failed ] && break; sleep 0.1; done; systemctl is-active k3s || true");
    const run = await verify();
    assertFailedAt(run, 2, /failed/);
    assert.ok(run.ms < 10_000, `took ${run.ms} ms`);
  });

  it("times out at step 2 naming what it waited for when k3s never gets ready", async () => {
    await startSimulatedK3s(node, { ...FAST, faults: { apiNeverReady: true } });
    const run = await verify({ timeout: 30 });
    assertFailedAt(run, 2, /activating/);
    assert.ok(run.ms >= 29_000 && run.ms < 40_000, `took ${run.ms} ms`);
  });

  it("times out at step 3 when the node never turns Ready", async () => {
    await startSimulatedK3s(node, { ...FAST, faults: { nodeNeverReady: true } });
    const run = await verify({ timeout: 30 });
    assertFailedAt(run, 3, /Ready=False/);
  });

  it("fails step 6 at once when the token's CA hash does not match the served CA", async () => {
    await startSimulatedK3s(node, { ...FAST, faults: { caMismatch: true } });
    const run = await verify();
    assertFailedAt(run, 6, /CA/);
    assert.ok(step(run.report, 6).attempts === 1, "a CA mismatch is not retried");
    assert.deepEqual(run.cmdlineLeaks, []);
  });

  it("fails step 6 naming 401 when the server refuses the token's password", async () => {
    await startSimulatedK3s(node, { ...FAST, faults: { wrongPassword: true } });
    const run = await verify();
    assertFailedAt(run, 6, /401/);
    assert.deepEqual(run.cmdlineLeaks, []);
  });

  it("fails step 5 with the token grammar's message for a malformed token", async () => {
    await startSimulatedK3s(node, { ...FAST, faults: { malformedToken: "K10abc::server:secretpassword0123456789" } });
    const run = await verify({ secrets: async () => ["secretpassword0123456789"] });
    assertFailedAt(run, 5, /invalid token CA hash length/);
  });

  it("rides out sshd being down for a few seconds (step 1 retried)", async () => {
    await startSimulatedK3s(node, FAST);
    await onNode("systemctl stop ssh.service && setsid -f bash -c 'sleep 4; systemctl start ssh.service' >/dev/null 2>&1 </dev/null");
    const run = await verify();
    assert.equal(run.report.ok, true, JSON.stringify(run.report.steps));
    assert.ok(step(run.report, 1).attempts > 1, "step 1 retried while sshd was down");
    assert.ok(step(run.report, 1).ms >= 3_000, `step 1 took ${step(run.report, 1).ms} ms`);
  });
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

describe("verify-server-token-ready.sh against a test node", () => {
  it("exits 0 with TOKEN:<token> as stdout's last line and one ✅ line per step on stderr", async () => {
    await startSimulatedK3s(node, FAST);
    const sampler = new CommandLineSampler();
    sampler.start(20);
    const r = await cli([IP, "ubuntu", testSshKey().privateKeyPath, "--timeout", "30", "--interval", "0.5", "--node-name", NAME]);
    sampler.stop();
    assert.equal(r.code, 0, r.stderr);
    const token = await onNode("cat /var/lib/rancher/k3s/server/token");
    assert.equal(r.stdout.trimEnd().split("\n").pop(), `TOKEN:${token}`);
    assert.equal((r.stderr.match(/✅/g) ?? []).length >= 7, true, r.stderr);
    const pw = token.split(":").pop()!;
    assert.ok(!r.stderr.includes(pw), "stderr holds the token's password");
    assert.deepEqual(sampler.findings([pw]).leaks, []);
  });

  it("exits 1 naming the failed step and its reason, with no TOKEN line", async () => {
    await startSimulatedK3s(node, { ...FAST, faults: { wrongPassword: true } });
    const r = await cli([IP, "root", testSshKey().privateKeyPath, "--timeout", "30", "--interval", "0.5"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /❌/);
    assert.match(r.stderr, /step 6/i);
    assert.match(r.stderr, /401/);
    assert.ok(!r.stdout.includes("TOKEN:"));
  });

  it("prints the report as JSON with --json, the token only in its token field", async () => {
    await startSimulatedK3s(node, FAST);
    const r = await cli([IP, "root", testSshKey().privateKeyPath, "--timeout", "30", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    const report = JSON.parse(lines.slice(0, -1).join("\n") || lines[0]);
    const token = await onNode("cat /var/lib/rancher/k3s/server/token");
    assert.equal(report.token, token);
    const { token: _t, agentToken: _a, ...rest } = report;
    assert.ok(!JSON.stringify(rest).includes(token.split(":").pop()!));
  });
});
