// Benchmark of the verifier against a simulated k3s server (the simulator as a host process behind a real
// OpenSSH sshd on 127.0.0.1). Measures the SSH/HTTPS path: steps 1 and 4–7. Steps 2–3 (systemctl, kubectl)
// need a systemd node: the `node` figures are all seven steps on a test node (verify-node.ts).
// Last stdout line: one JSON object of figures.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawn, spawnSync, ChildProcess } from "child_process";
import { buildSimulator } from "../tests/k3s-sim/build";
import { SshSession } from "../components/verify/ssh-session";
import * as steps from "../components/verify/steps";
import { retryUntil } from "../components/verify/retry";
import { nodeFigures } from "./verify-node";

const SSH_PORT = 22900, API_PORT = 26443, RUNS = 7;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vfy-bench-"));
const children: ChildProcess[] = [];
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

function startSshd(): void {
  for (const k of ["hostkey", "userkey"]) spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, k)]);
  fs.copyFileSync(path.join(dir, "userkey.pub"), path.join(dir, "authorized_keys"));
  fs.writeFileSync(path.join(dir, "sshd_config"), [`Port ${SSH_PORT}`, "ListenAddress 127.0.0.1", `HostKey ${dir}/hostkey`,
    `PidFile ${dir}/sshd.pid`, `AuthorizedKeysFile ${dir}/authorized_keys`, "PermitRootLogin prohibit-password", "StrictModes no", ""].join("\n"));
  fs.mkdirSync("/run/sshd", { recursive: true });
  children.push(spawn("/usr/sbin/sshd", ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: "ignore" }));
}

function startSim(sim: string, root: string, knobs: object): { proc: ChildProcess; readyAt: Promise<number> } {
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  fs.writeFileSync(path.join(root, "etc/k3s-sim.json"), JSON.stringify(knobs));
  const proc = spawn(process.execPath, [sim, "server", "--bind-address", "127.0.0.1", "--https-listen-port", String(API_PORT)],
    { env: { ...process.env, K3S_SIM_ROOT: root }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(proc);
  const readyAt = new Promise<number>((resolve) => {
    const watch = (d: Buffer) => { if (d.toString().includes("k3s is up and running")) resolve(Date.now()); };
    proc.stdout?.on("data", watch); proc.stderr?.on("data", watch);
  });
  return { proc, readyAt };
}

async function verifyOnce(root: string, intervalMs: number, timeoutMs: number) {
  const ssh = new SshSession({ host: "127.0.0.1", port: SSH_PORT, username: "root",
    privateKey: fs.readFileSync(path.join(dir, "userkey"), "utf8"), connectTimeoutMs: 5000 });
  const ctx: steps.StepContext = { ssh, host: "127.0.0.1", apiPort: API_PORT, dataDir: `${root}/var/lib/rancher/k3s`, root: true, commandTimeoutMs: 5000 };
  const deadline = Date.now() + timeoutMs;
  const t0 = Date.now();
  for (const f of [steps.sshConnectivity, steps.tokenAvailable, steps.tokenFormat, steps.authentication, steps.apiAccessible]) {
    const r = await retryUntil(deadline, intervalMs, () => f(ctx));
    if (!r.ok) throw new Error(`${f.name}: ${r.detail}`);
  }
  const done = Date.now();
  ssh.close();
  return { ms: done - t0, done, connections: ssh.connections };
}

// The same checks with one OpenSSH client process per check, HTTPS by curl on the server (credentials on stdin).
function baselineOnce(root: string): number {
  const ssh = (cmd: string, input?: string) => {
    const r = spawnSync("ssh", ["-i", path.join(dir, "userkey"), "-p", String(SSH_PORT), "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "root@127.0.0.1", cmd], { input, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`baseline ${cmd}: ${r.stderr}`);
    return r.stdout;
  };
  const t0 = Date.now();
  const url = `https://127.0.0.1:${API_PORT}`;
  ssh("true");
  const token = ssh(`cat ${root}/var/lib/rancher/k3s/server/node-token`).trim();
  const pw = token.slice(token.lastIndexOf(":") + 1);
  const hash = token.slice(3, 67);
  const got = ssh(`curl -sk ${url}/cacerts | tee /tmp/vfy-bench-ca.crt | sha256sum`).split(" ")[0];
  if (got !== hash) throw new Error("baseline: CA hash mismatch");
  for (const [user, p] of [["node", "/v1-k3s/config"], ["server", "/v1-k3s/encrypt/status"], ["node", "/v1-k3s/readyz"]]) {
    const code = ssh(`curl -s -o /dev/null -w '%{http_code}' --cacert /tmp/vfy-bench-ca.crt -K - ${url}${p}`, `user = "${user}:${pw}"\n`);
    if (code !== "200") throw new Error(`baseline ${p}: ${code}`);
  }
  return Date.now() - t0;
}

async function main() {
  const sim = await buildSimulator();
  startSshd();
  await new Promise((r) => setTimeout(r, 500));
  const readyRoot = path.join(dir, "ready");
  const s1 = startSim(sim, readyRoot, { tokenDelay: 0, apiReadyDelay: 1, nodeReadyDelay: 0 });
  await s1.readyAt;
  const ours: number[] = [], base: number[] = [], conns: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await verifyOnce(readyRoot, 1000, 30000);
    ours.push(r.ms); conns.push(r.connections);
    base.push(baselineOnce(readyRoot));
  }
  s1.proc.kill();
  await new Promise((r) => setTimeout(r, 500));
  // Detection latency: start verifying a starting server; the API turns ready at apiReadyDelay.
  const intervalMs = 1000;
  const lat: number[] = [];
  for (let i = 0; i < 3; i++) {
    const root = path.join(dir, `starting-${i}`);
    const s = startSim(sim, root, { tokenDelay: 1, apiReadyDelay: 4 + i * 0.37, nodeReadyDelay: 0 });
    const v = await verifyOnce(root, intervalMs, 60000);
    lat.push(v.done - (await s.readyAt));
    s.proc.kill();
    await new Promise((r) => setTimeout(r, 500));
  }
  const figures = {
    scope: "steps 1,4,5,6,7 over SSH+forwarded HTTPS to a host process (all seven: see node)",
    runs: RUNS,
    sshConnectionsPerVerification: median(conns),
    medianMs: median(ours),
    baselineMedianMs: median(base),
    ratio: Math.round((median(ours) / median(base)) * 1000) / 1000,
    intervalMs,
    detectionLatencyMs: median(lat),
    detectionLatencyMaxMs: Math.max(...lat),
    node: await nodeFigures(RUNS, intervalMs),
  };
  console.log(JSON.stringify(figures));
}

main().catch((e) => { console.error(e); process.exitCode = 1; }).finally(() => {
  for (const c of children) if (c.pid && c.exitCode === null) c.kill();
  setTimeout(() => { fs.rmSync(dir, { recursive: true, force: true }); fs.rmSync("/tmp/vfy-bench-ca.crt", { force: true }); }, 300);
});
