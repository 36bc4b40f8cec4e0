// The node-side check as a watcher on a test node: the verifier knows a server is ready within a fraction of
// a second whatever its polling interval, and nothing of the check stays on the server — after its verdict
// (nodes-ready), at the deadline (nodes-faults), when the SSH connection is cut, when the verifier vanishes
// without closing it, when its stdin closes. Also the script as the Puppet module runs it: human lines, exit
// codes, the expected token from a root-only file, no token on any command line.
// Test node: ver-watch-0 at 198.51.100.15 (this suite's slice: .10–.49).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { STEP_NAMES, verifyServerToken } from "../../components/verify";
import { testSshKey } from "../rig/nodes";
import { SCRIPT_FILE } from "./generate-check-script";
import { FAST, SimServer, Samplers, DATA_DIR, assertPassed, step, verify } from "./node-harness";

/** Where the Puppet module installs the check; installed here the same way (root 0755). */
const INSTALLED = "/usr/local/sbin/k3s-cluster-check";

let server: SimServer;
before(async () => {
  server = await SimServer.boot("ver-watch-0", "198.51.100.15");
  const dest = path.join(server.node.rootDir, INSTALLED);
  await fs.copyFile(SCRIPT_FILE, dest);
  await fs.chmod(dest, 0o755);
});
after(async () => {
  await server?.close();
});

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Microseconds on the kernel's monotonic clock (shared by host and node) when systemd marked k3s active. */
async function activeAtUs(): Promise<number> {
  return Number(await server.sh("systemctl show k3s -p ActiveEnterTimestampMonotonic --value"));
}

/** Polls the node every 50 ms for up to `ms` until none of `pids` exists; how long that took, or -1. */
async function goneWithin(pids: number[], ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const r = await server.node.exec(pids.map((p) => `kill -0 ${p} 2>/dev/null`).join(" || "));
    if (r.code !== 0) return Date.now() - t0;
    await new Promise((res) => setTimeout(res, 50));
  }
  return -1;
}

/** A TCP relay to the node's sshd that can cut every connection through it, as a dropped link would. */
async function relay(): Promise<{ port: number; cut: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    const upstream = net.connect(22, server.ip);
    for (const s of [client, upstream]) { sockets.add(s); s.on("close", () => sockets.delete(s)); s.on("error", () => undefined); }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    cut: () => { const n = sockets.size; for (const s of sockets) s.destroy(); return n; },
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

describe("the verifier hears of readiness from the server", () => {
  it("knows within 500 ms of systemd marking k3s active, with a 5 s polling interval", async () => {
    const latencies: number[] = [];
    for (let i = 0; i < 3; i++) {
      // nodeReadyDelay 0: the node is Ready when systemd marks k3s active, the last condition to turn true.
      await server.start({ ...FAST, apiReadyDelay: 2 + i * 0.41, nodeReadyDelay: 0 });
      const run = await verify(server, { intervalSeconds: 5 });
      const done = nowUs();
      assertPassed(run);
      assert.ok(step(run.report, 2).attempts >= 5, `step 2 waited through k3s starting: ${JSON.stringify(step(run.report, 2))}`);
      latencies.push(Math.round((done - (await activeAtUs())) / 1000));
    }
    console.log(`verdict after systemd marked k3s active: ${latencies.join(", ")} ms (median ${median(latencies)})`);
    // Polling every 5 s would take 0-5 s; the check on the server looks every 0.1 s and on systemd's signal.
    for (const ms of latencies) assert.ok(ms >= 0 && ms < 500, `verdict ${ms} ms after k3s turned active: ${latencies.join(", ")}`);
    assert.deepEqual(await server.checkLeftovers(), []);
  });
});

describe("nothing of the check stays on the server", () => {
  it("a cut SSH connection: its check exits at once; the verifier reconnects, passes, and leaves nothing", async () => {
    const link = await relay();
    try {
      await server.start({ ...FAST, apiReadyDelay: 5 });
      const progress: string[] = [];
      const pending = verifyServerToken({
        host: "127.0.0.1", sshPort: link.port, username: "root", privateKey: testSshKey().privateKey, nodeName: server.name,
        timeoutSeconds: 30, intervalSeconds: 0.5, onProgress: (l) => progress.push(l),
      });
      let pids: number[] = [];
      for (let i = 0; i < 100 && pids.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        pids = await server.watcherPids();
      }
      assert.equal(pids.length, 1, "waited 5 s for the check to start on the server");
      assert.ok(link.cut() >= 2, "the relay carried the verifier's connection");
      const ms = await goneWithin(pids, 3000);
      assert.ok(ms >= 0, `the check (pid ${pids[0]}) still ran 3 s after its connection was cut`);
      console.log(`check exited ${ms} ms after its connection was cut`);
      const report = await pending;
      assert.equal(report.ok, true, progress.join("\n"));
      assert.equal(report.sshConnections, 2, "one reconnection after the cut");
      assert.deepEqual(report.steps.map((s) => s.ok), [true, true, true, true, true, true, true]);
      assert.ok(!(await server.watcherPids()).includes(pids[0]));
      assert.deepEqual(await server.checkLeftovers(), []);
    } finally {
      link.cut();
      await link.close();
    }
  });

  it("a verifier that vanished without closing its connection: the check ends at its own deadline", async () => {
    await server.start({ ...FAST, apiReadyDelay: 60 });
    // stdin held open by a process that outlives the deadline: nothing tells the check to stop but time.
    const out = await server.node.exec(`start=$(date +%s%N)
      ${INSTALLED} --events --timeout 3 --node-name ${server.name} < <(exec sleep 12 2>/dev/null)
      rc=$?; echo "rc=$rc ms=$((($(date +%s%N) - start) / 1000000))"`, { timeoutMs: 15_000 });
    const lines = out.stdout.trim().split("\n");
    assert.deepEqual(lines.slice(0, 2), ["check 1", "wait 2 1 k3s service is activating"], out.stdout + out.stderr);
    assert.match(lines[2], /^fail 2 \d+ \d+ timed out after 3 s: k3s service is activating$/);
    assert.equal(lines[3], "end 1");
    const m = /^rc=1 ms=(\d+)$/.exec(lines[4] ?? "");
    assert.ok(m, out.stdout);
    assert.ok(Number(m[1]) >= 3000 && Number(m[1]) < 4500, `ended after ${m[1]} ms, deadline 3 s`);
    assert.deepEqual(await server.checkLeftovers(), []);
  });

  it("its stdin closing stops it (exit 3) within a tick or two, the systemd watch with it", async () => {
    await server.start({ ...FAST, apiReadyDelay: 60 });
    const out = await server.node.exec(`start=$(date +%s%N); ${INSTALLED} --events --timeout 30 < <(exec sleep 1 2>/dev/null)
      rc=$?; echo "rc=$rc ms=$((($(date +%s%N) - start) / 1000000))"`, { timeoutMs: 15_000 });
    const m = /^rc=(\d+) ms=(\d+)$/m.exec(out.stdout);
    assert.ok(m, out.stdout + out.stderr);
    assert.equal(m[1], "3", out.stdout);
    assert.ok(Number(m[2]) >= 1000 && Number(m[2]) < 1500, `stopped ${m[2]} ms after start, stdin closed at 1000 ms`);
    assert.match(out.stdout, /^end 3$/m);
    assert.deepEqual(await server.checkLeftovers(), []);
  });
});

describe("the check as the Puppet module runs it (a file, as root, human lines)", () => {
  it("passes a ready server with one ⏳ and one ✅ line per step, the expected token from a root-only file", async () => {
    await server.start(FAST, { ready: true });
    await server.sh(`umask 077; cp ${DATA_DIR}/server/token /root/expected-token`);
    const samplers = new Samplers(server);
    await samplers.start();
    const out = await server.node.exec(`${INSTALLED} --timeout 30 --expected-token-file /root/expected-token`);
    const secrets = await server.tokenSecrets();
    await samplers.stopAndCheck(secrets, `${INSTALLED} --timeout 30`);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const lines = out.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 12, out.stdout);
    for (let n = 2; n <= 7; n++) {
      const name = STEP_NAMES[n - 1];
      assert.match(lines[2 * (n - 2)], new RegExp(`^⏳ \\[${n}/7\\] ${name}: waiting up to (29|30)s, checking every 0\\.1s$`));
      assert.match(lines[2 * (n - 2) + 1], new RegExp(`^✅ \\[${n}/7\\] ${name}: .+ \\(1 attempt, \\d+ ms\\)$`));
    }
    assert.match(lines[3], new RegExp(`^✅ \\[3/7\\] Node Ready: node ${server.name} is Ready `), "the node name defaults to the host name");
    for (const s of secrets) assert.ok(!out.stdout.includes(s) && !out.stderr.includes(s), "the output holds the token");
    assert.deepEqual(await server.checkLeftovers(), []);
  });

  it("fails step 6 (exit 1) when the server's token is not the expected one, naming neither", async () => {
    const other = randomBytes(16).toString("hex");
    await server.sh(`umask 077; printf '%s\\n' ${other} > /root/expected-token`);
    const out = await server.node.exec(`${INSTALLED} --timeout 30 --expected-token-file /root/expected-token`);
    assert.equal(out.code, 1, out.stdout + out.stderr);
    assert.match(out.stdout.trimEnd().split("\n").pop() ?? "",
      /^❌ \[6\/7\] Authentication: the server's token is not the expected token \(passwords differ\) \(1 attempt, \d+ ms\)$/);
    for (const s of [other, ...(await server.tokenSecrets())]) assert.ok(!out.stdout.includes(s), "the output holds a token");
    await server.sh("rm -f /root/expected-token");
  });
});
