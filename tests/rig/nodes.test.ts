// Self-test of the node rig: what every other suite relies on a node to be.
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, describe, it } from "node:test";
import { Client } from "ssh2";
import { installSimulatedK3s, startSimulatedK3s } from "../helpers/simulated-k3s";
import { nodePids } from "./cgroups";
import { HOST_IP, startNodes, testSshKey, type TestNode } from "./nodes";

function sshExec(host: string, username: string, command: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const conn = new Client();
    conn.on("ready", () => {
      conn.exec(command, (err, stream) => {
        if (err) return reject(err);
        let stdout = "";
        stream.on("data", (d: Buffer) => (stdout += d));
        stream.stderr.on("data", () => undefined);
        stream.on("close", (code: number) => { conn.end(); resolve({ code, stdout }); });
      });
    });
    conn.on("error", reject);
    conn.connect({ host, username, privateKey: testSshKey().privateKey, readyTimeout: 10_000 });
  });
}

describe("node rig", () => {
  let nodes: TestNode[] = [];
  before(async () => {
    nodes = await startNodes([
      { name: "rig-node-a", ip: "198.51.100.2", hosts: { "puppet.test": HOST_IP } },
      { name: "rig-node-b", ip: "198.51.100.3" },
    ]);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it("runs systemd as PID 1 with the node's own name and address, and no default route", async () => {
    const [a] = nodes;
    const r = await a.exec("cat /proc/1/comm; hostname; systemctl is-system-running; ip -4 -o addr show host0; ip route");
    const [comm, hostname, state, addr, ...routes] = r.stdout.trim().split("\n");
    assert.equal(comm, "systemd");
    assert.equal(hostname, "rig-node-a");
    assert.equal(state, "running");
    assert.match(addr, /inet 198\.51\.100\.2\/24/);
    assert.ok(routes.every((l) => !l.startsWith("default")), `unexpected default route: ${routes.join("; ")}`);
    assert.match((await a.exec("getent hosts puppet.test")).stdout, /^198\.51\.100\.1\s+puppet\.test/);
  });

  it("accepts the test key for root and for ubuntu, who has passwordless sudo", async () => {
    const root = await sshExec("198.51.100.2", "root", "id -u");
    assert.deepEqual(root, { code: 0, stdout: "0\n" });
    const ubuntu = await sshExec("198.51.100.3", "ubuntu", "id -un; sudo -n id -u");
    assert.deepEqual(ubuntu, { code: 0, stdout: "ubuntu\n0\n" });
  });

  it("gives every node its own SSH host key and machine id", async () => {
    const ids = await Promise.all(nodes.map((n) =>
      n.exec("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2; cat /etc/machine-id")));
    assert.notEqual(ids[0].stdout, ids[1].stdout);
    assert.ok(ids.every((r) => r.code === 0 && /^SHA256:/.test(r.stdout)));
  });

  it("lets nodes reach each other and the host on the bridge", async () => {
    const r = await nodes[0].exec("timeout 5 bash -c 'exec 3<>/dev/tcp/198.51.100.3/22; head -c 4 <&3'");
    assert.equal(r.stdout, "SSH-");
  });

  it("exec passes stdin, reports exit codes and enforces its timeout", async () => {
    const [a] = nodes;
    assert.deepEqual(await a.exec("cat; exit 7", { input: "from stdin" }), { code: 7, stdout: "from stdin", stderr: "" });
    const slow = await a.exec("sleep 30", { timeoutMs: 500 });
    assert.equal(slow.code, 124);
  });

  it("runs the k3s simulator as a Type=notify unit that turns active when the API is ready", async () => {
    const [a] = nodes;
    await installSimulatedK3s(a);
    await startSimulatedK3s(a, { tokenDelay: 0.5, apiReadyDelay: 2, nodeReadyDelay: 0.5 });
    const start = await a.exec("sleep 0.5; systemctl is-active k3s");
    assert.equal(start.stdout.trim(), "activating", "a Type=notify unit is activating until READY=1");
    const active = await a.exec("for i in $(seq 1 100); do systemctl is-active --quiet k3s && break; sleep 0.1; done; systemctl is-active k3s");
    assert.equal(active.stdout.trim(), "active", (await a.exec("journalctl -u k3s --no-pager | tail -20")).stdout);
    const token = await a.exec("stat -c '%a %U' /var/lib/rancher/k3s/server/token; readlink /var/lib/rancher/k3s/server/node-token");
    assert.equal(token.stdout, "600 root\n/var/lib/rancher/k3s/server/token\n");
    const ready = await a.exec(`for i in $(seq 1 50); do s=$(k3s kubectl get node rig-node-a -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'); [ "$s" = True ] && break; sleep 0.2; done; echo $s`);
    assert.equal(ready.stdout.trim(), "True");
  });

  it("stops a node completely: no process left, its root unmounted", async () => {
    const [extra] = await startNodes([{ name: "rig-node-c", ip: "198.51.100.4" }]);
    assert.ok((await nodePids("rig-node-c")).length > 0);
    await extra.exec("systemd-run --unit=stray sleep 1000");
    await extra.stop();
    assert.deepEqual(await nodePids("rig-node-c"), []);
    const mounts = await fs.readFile("/proc/mounts", "utf8");
    assert.ok(!mounts.includes(extra.rootDir), "the node's overlay is still mounted");
    await assert.rejects(fs.stat(extra.rootDir));
  });
});
