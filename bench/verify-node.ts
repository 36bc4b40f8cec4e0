// The verifier's full seven steps against a simulated k3s server on a test node (real systemd, OpenSSH,
// sudo), where steps 2–3 (systemctl, kubectl) run for real: median wall time beside a baseline of the same
// seven checks with one `ssh` process each, and the detection latency after systemd marks k3s active.
// Test node: ver-bench-0 at 198.51.100.20 (the verification slice: .10–.49).
import { spawnSync } from "child_process";
import { NODE_READY_JSONPATH, verifyServerToken } from "../components/verify";
import { startNodes, testSshKey, type TestNode } from "../tests/rig/nodes";
import { installSimulatedK3s, startSimulatedK3s } from "../tests/helpers/simulated-k3s";

const IP = "198.51.100.20";
const NAME = "ver-bench-0";
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

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

export async function nodeFigures(runs: number, intervalMs: number): Promise<Record<string, unknown>> {
  const [node] = await startNodes([{ name: NAME, ip: IP }]);
  try {
    await installSimulatedK3s(node);
    await startSimulatedK3s(node, { tokenDelay: 0.2, apiReadyDelay: 1, nodeReadyDelay: 0 });
    await waitActive(node);
    const ours: number[] = [], base: number[] = [], conns: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = Date.now();
      const report = await verifyAll(intervalMs / 1000);
      if (!report.ok) throw new Error(`bench: verification failed at step ${report.failedStep}: ${JSON.stringify(report.steps)}`);
      ours.push(Date.now() - t0);
      conns.push(report.sshConnections);
      base.push(baselineOnce());
    }
    // Detection latency: verify a starting server; with nodeReadyDelay 0 it is ready when systemd says
    // active (READY=1). Host and node share the kernel's monotonic clock.
    const lat: number[] = [];
    for (let i = 0; i < 3; i++) {
      await startSimulatedK3s(node, { tokenDelay: 0.5, apiReadyDelay: 3 + i * 0.37, nodeReadyDelay: 0 });
      const report = await verifyAll(intervalMs / 1000);
      const doneUs = Number(process.hrtime.bigint() / 1000n);
      if (!report.ok) throw new Error(`bench: verification failed at step ${report.failedStep}`);
      const activeUs = Number(await sh(node, "systemctl show k3s -p ActiveEnterTimestampMonotonic --value"));
      lat.push(Math.round((doneUs - activeUs) / 1000));
    }
    return {
      scope: "all seven steps on a test node (systemd, sudo, kubectl), as the sudo user",
      runs,
      sshConnectionsPerVerification: median(conns),
      medianMs: median(ours),
      baselineMedianMs: median(base),
      ratio: Math.round((median(ours) / median(base)) * 1000) / 1000,
      intervalMs,
      detectionLatencyMs: median(lat),
      detectionLatencyMaxMs: Math.max(...lat),
    };
  } finally {
    await node.stop();
  }
}
