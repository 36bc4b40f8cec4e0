// The verifier's seven steps against a simulated k3s server on a test node (real systemd, OpenSSH, sudo):
// wall time on a ready server beside a baseline of the same checks with one `ssh` process each, and the
// detection latency — from systemd marking k3s active to the verifier holding its verdict — for the
// event-driven verifier and for polling (the same node-side check run once per interval over SSH).
// Test node: ver-bench-0 at 198.51.100.20 (the verification slice: .10–.49).
import { spawnSync } from "child_process";
import { checkCommand, verifyServerToken } from "../components/verify";
import { SshSession } from "../components/verify/ssh-session";
import { CHECK_SCRIPT } from "../components/verify/check-script";
import { startNodes, testSshKey, type TestNode } from "../tests/rig/nodes";
import { installSimulatedK3s, startSimulatedK3s } from "../tests/helpers/simulated-k3s";
import { NODE_READY_JSONPATH } from "../tests/verify/node-harness";

export const IP = "198.51.100.20";
const NAME = "ver-bench-0";
export const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function sh(node: TestNode, cmd: string): Promise<string> {
  const r = await node.exec(cmd);
  if (r.code !== 0) throw new Error(`bench: \`${cmd}\` on ${node.name} failed: ${r.stderr}`);
  return r.stdout.trim();
}

async function waitActive(node: TestNode): Promise<void> {
  await sh(node, `for i in $(seq 1 300); do [ "$(systemctl is-active k3s)" = active ] && exit 0; sleep 0.1; done; ` +
    `echo "k3s not active after 30 s" >&2; exit 1`);
}

function verifyAll(intervalSeconds: number) {
  return verifyServerToken({
    host: IP, username: "ubuntu", privateKey: testSshKey().privateKey, nodeName: NAME,
    timeoutSeconds: 60, intervalSeconds,
  });
}

// One OpenSSH client process per check, as a shell script would do it; credentials go on stdin.
function baselineOnce(): number {
  const ssh = (cmd: string, input?: string) => {
    const r = spawnSync("ssh", ["-i", testSshKey().privateKeyPath, "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", `ubuntu@${IP}`, cmd], { input, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`baseline ${cmd}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const t0 = Date.now();
  const url = `https://${IP}:6443`;
  ssh("true");
  if (ssh("systemctl is-active k3s") !== "active") throw new Error("baseline: k3s not active");
  if (ssh(`sudo -n k3s kubectl get node ${NAME} -o jsonpath='${NODE_READY_JSONPATH}'`) !== "True") throw new Error("baseline: node not Ready");
  const token = ssh("sudo -n cat /var/lib/rancher/k3s/server/node-token");
  const pw = token.slice(token.lastIndexOf(":") + 1);
  const got = ssh(`curl -sk ${url}/cacerts | tee /tmp/vfy-bench-ca.crt | sha256sum`).split(" ")[0];
  if (got !== token.slice(3, 67)) throw new Error("baseline: CA hash mismatch");
  for (const [user, p] of [["node", "/v1-k3s/config"], ["server", "/v1-k3s/encrypt/status"], ["node", "/v1-k3s/readyz"]]) {
    const code = ssh(`curl -s -o /dev/null -w '%{http_code}' --cacert /tmp/vfy-bench-ca.crt -K - ${url}${p}`, `user = "${user}:${pw}"\n`);
    if (code !== "200") throw new Error(`baseline ${p}: ${code}`);
  }
  return Date.now() - t0;
}

/**
 * Polling, for comparison: what the verifier did before it watched — every interval one SSH exec that
 * checks each step once (`--timeout 0`, the same script), until a run passes them all. One connection.
 */
async function pollUntilReady(intervalSeconds: number, timeoutSeconds: number): Promise<void> {
  const ssh = new SshSession({ host: IP, port: 22, username: "ubuntu", privateKey: testSshKey().privateKey, connectTimeoutMs: 10000 });
  const deadline = Date.now() + timeoutSeconds * 1000;
  try {
    for (;;) {
      const ch = await ssh.start(checkCommand({ root: false, deadline: Date.now(), apiPort: 6443, dataDir: "/var/lib/rancher/k3s",
        nodeName: NAME, tlsName: IP }));
      const out = await new Promise<string>((resolve) => {
        let text = "";
        ch.on("data", (d: Buffer) => { text += d.toString(); if (/^pass 7 /m.test(text)) ch.end(); });
        ch.stderr.on("data", () => undefined);
        ch.on("close", () => resolve(text));
        ch.write(CHECK_SCRIPT);
      });
      if (/^pass 7 /m.test(out)) return;
      if (Date.now() > deadline) throw new Error(`bench: polling saw no ready server within ${timeoutSeconds} s`);
      await new Promise((r) => setTimeout(r, intervalSeconds * 1000));
    }
  } finally {
    ssh.close();
  }
}

export interface LatencyCell { medianMs: number; maxMs: number; runsMs: number[] }
export interface LatencyRow { intervalS: number; event: LatencyCell; polling: LatencyCell }

/** Detection latency figures on the test node: ready-server wall time, then latency per interval and mode. */
export async function nodeFigures(runs: number, intervals: number[], latencyRuns: number): Promise<Record<string, unknown>> {
  const [node] = await startNodes([{ name: NAME, ip: IP }]);
  try {
    await installSimulatedK3s(node);
    await startSimulatedK3s(node, { tokenDelay: 0.2, apiReadyDelay: 1, nodeReadyDelay: 0 });
    await waitActive(node);
    const ours: number[] = [], base: number[] = [], conns: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = Date.now();
      const report = await verifyAll(1);
      if (!report.ok) throw new Error(`bench: verification failed at step ${report.failedStep}: ${JSON.stringify(report.steps)}`);
      ours.push(Date.now() - t0);
      conns.push(report.sshConnections);
      base.push(baselineOnce());
    }
    // Detection latency: start verifying while k3s starts; with nodeReadyDelay 0 it is ready when systemd
    // says active (READY=1). The API's start time varies by run so polling meets it at every phase of its
    // interval. Host and node share the kernel's monotonic clock.
    const latency: LatencyRow[] = [];
    for (const interval of intervals) {
      const cell = { event: [] as number[], polling: [] as number[] };
      for (const mode of ["event", "polling"] as const) {
        for (let i = 0; i < latencyRuns; i++) {
          const apiReadyDelay = 2 + ((i * 0.37 * interval) % Math.max(interval, 1));
          await startSimulatedK3s(node, { tokenDelay: 0.5, apiReadyDelay, nodeReadyDelay: 0 });
          if (mode === "event") {
            const report = await verifyAll(interval);
            if (!report.ok) throw new Error(`bench: verification failed at step ${report.failedStep}`);
          } else {
            await pollUntilReady(interval, 60);
          }
          const doneUs = nowUs();
          const activeUs = Number(await sh(node, "systemctl show k3s -p ActiveEnterTimestampMonotonic --value"));
          cell[mode].push(Math.round((doneUs - activeUs) / 1000));
        }
      }
      const summary = (xs: number[]): LatencyCell => ({ medianMs: median(xs), maxMs: Math.max(...xs), runsMs: xs });
      latency.push({ intervalS: interval, event: summary(cell.event), polling: summary(cell.polling) });
    }
    return {
      scope: "all seven steps on a test node (systemd, sudo, the node-side check), as the sudo user",
      runs,
      sshConnectionsPerVerification: median(conns),
      medianMs: median(ours),
      baselineMedianMs: median(base),
      ratio: Math.round((median(ours) / median(base)) * 1000) / 1000,
      latencyRuns,
      detectionLatency: latency,
    };
  } finally {
    await node.stop();
  }
}
