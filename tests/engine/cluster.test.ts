// The program on the real engine: `pulumi preview`, `up`, `stack output`, `refresh`, `destroy` of a
// 1 server + 2 agent cluster on test nodes given as `k3s-cluster:hosts`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClusterUnderTest, FAST_KNOBS, plaintextPaths, stateUrns } from "./harness";
import { sshPrivateKey } from "./hosts";

describe("pulumi up of 1 server + 2 agents on the real engine", { timeout: 15 * 60_000 }, () => {
  const c = new ClusterUnderTest({ prefix: "eng-a", servers: 1, agents: 2, firstOctet: 100, knobs: FAST_KNOBS });
  let needles: string[] = [];

  before(() => c.prepare());
  after(() => c.teardown());

  it("pulumi preview of the new stack plans every step and prints no secret", async () => {
    const r = await c.stack.run(["preview", "--diff"]);
    assert.match(r.stdout, /ServerToken/);
    assert.match(r.stdout, /eng-a-eng-a-a1-puppet-apply/);
    assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/, "the SSH key is not printed");
  });

  it("pulumi up joins every node; the kubeconfig output works with a real kubectl", async () => {
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    assert.match(r.stdout, /created/);
    const secrets = await c.secrets();
    needles = secrets.needles;
    assert.match(String(secrets.outputs.token), /^K10[0-9a-f]{64}::server:[0-9a-f]{32}$/);
    const list = await c.waitForReady(3);
    assert.deepEqual(list.map((n) => `${n.name} ${n.status}`).sort(), ["eng-a-a0 Ready", "eng-a-a1 Ready", "eng-a-s0 Ready"]);
    const kubectl = await c.kubectlGetNodes();
    assert.ok(kubectl.ok, kubectl.text);
    assert.match(kubectl.text, /eng-a-s0\s+Ready\s+control-plane/);
    // Agents joined only after the server was verified (their k3s started after the server's turned active).
    const server = await c.unitTimes("eng-a-s0");
    for (const agent of ["eng-a-a0", "eng-a-a1"]) {
      const t = await c.unitTimes(agent);
      assert.equal(t.unit, "k3s-agent");
      assert.ok(t.startMs! >= server.activeMs!, `${agent} started k3s-agent before the server was active`);
    }
  });

  it("right after up, and after pulumi refresh, pulumi preview --expect-no-changes passes", async () => {
    await c.stack.run(["preview", "--expect-no-changes"]);
    await c.stack.run(["refresh", "--yes", "--skip-preview"]);
    await c.stack.run(["preview", "--expect-no-changes"]);
  });

  it("the state holds tokens and the SSH key only as ciphertext; --show-secrets reveals them", async () => {
    const plain = await c.stack.exportState();
    assert.deepEqual(plaintextPaths(plain, needles), [], "no token or password in the exported state");
    // The key's base64 body: the words "PRIVATE KEY" also occur in the verifier's own code, serialized in state.
    const keyBody = sshPrivateKey().split("\n")[1];
    assert.deepEqual(plaintextPaths(plain, [keyBody]), [], "no SSH private key in the exported state");
    assert.match(plain, /"ciphertext"/);
    const revealed = await c.stack.exportState(true);
    assert.ok(needles.every((n) => revealed.includes(n)), "--show-secrets shows the tokens");
    assert.ok(revealed.includes(keyBody), "--show-secrets shows the SSH key");
  });

  it("no token in the engine's output, any command line sampled, any journal, or a file not root 0600", async () => {
    const l = await c.leaks(needles);
    assert.ok(l.samples > 20, `command lines were sampled (${l.samples} samples)`);
    assert.deepEqual(l.transcript, [], "engine output");
    assert.deepEqual(l.cmdlines, [], "command lines");
    assert.deepEqual(l.journals, [], "journals");
    assert.deepEqual(l.files.filter((f) => !f.private), [], "files readable by others");
    assert.ok(l.files.some((f) => f.path === "/etc/rancher/k3s/cluster-token"), "the agents' token files were found by the scan");
  });

  it("pulumi destroy empties the stack and gives the machines back clean", async () => {
    await c.stack.run(["destroy", "--yes", "--skip-preview"], { echo: true });
    assert.deepEqual(await stateUrns(c.stack), [], "no resource left in the state");
    for (const [name, node] of c.nodes) {
      const r = await node.exec(
        "for p in /usr/local/bin/k3s /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/k3s-cluster /etc/k3s-cluster /etc/rancher/k3s/cluster-token " +
        "/etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service; do [ -e \"$p\" ] && echo \"left: $p\"; done; " +
        "systemctl is-active k3s k3s-agent 2>/dev/null | grep -x active || true; pgrep -fa 'k3s (server|agent)' || true");
      assert.equal(r.stdout.trim(), "", `${name} still has: ${r.stdout}`);
    }
  });
});
