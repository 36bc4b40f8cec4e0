// What `pulumi up` says, and what it leaves, when something goes wrong — on the real engine.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClusterUnderTest, FAST_KNOBS, stateUrns } from "./harness";

describe("pulumi up failures on the real engine", { timeout: 15 * 60_000 }, () => {
  const clusters: ClusterUnderTest[] = [];
  after(() => Promise.all(clusters.map((c) => c.teardown())));
  const cluster = (spec: ConstructorParameters<typeof ClusterUnderTest>[0]) => {
    const c = new ClusterUnderTest(spec);
    clusters.push(c);
    return c;
  };

  it("a server that never gets ready fails naming the step, and no agent resource is in the state", async () => {
    const c = cluster({ prefix: "eng-n", servers: 1, agents: 1, firstOctet: 120, knobs: { ...FAST_KNOBS, faults: { apiNeverReady: true } }, tokenTimeout: 30 });
    await c.prepare();
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /k3s server token verification of 198\.51\.100\.120 within 30s: step 2 \(k3s service active\) failed/);
    const urns = await stateUrns(c.stack);
    assert.ok(urns.some((u) => u.endsWith("eng-n-eng-n-s0-puppet-apply")), "the server's bootstrap is in the state");
    // The agent was prepared alongside (Puppet applied, k3s installed but stopped); it never got a token or started.
    assert.ok(urns.some((u) => u.endsWith("eng-n-a0-puppet-apply")), "the agent was prepared before the gate");
    assert.deepEqual(urns.filter((u) => /eng-n-a0-(token-file|start)$/.test(u)), [], "no agent joined");
  });

  it("a token whose CA hash does not match fails at step 6 at once", async () => {
    const c = cluster({ prefix: "eng-c", servers: 1, agents: 1, firstOctet: 125, knobs: { ...FAST_KNOBS, faults: { caMismatch: true } } });
    await c.prepare();
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /step 6 \(Authentication\) failed after 1 attempt\(s\)/);
    assert.match(r.stdout, /token CA hash does not match the Cluster CA certificate hash/);
  });

  it("a node presenting another host key than the one given is refused before anything is sent", async () => {
    const c = cluster({ prefix: "eng-k", servers: 1, agents: 0, firstOctet: 130, knobs: FAST_KNOBS, knownHostKeys: true });
    await c.prepare();
    // Claim a key the node does not have: the stack's hosts entry now names someone else's machine.
    const hosts = JSON.parse((await c.stack.run(["config", "get", "k3s-cluster:hosts"])).stdout) as { hostKey: string }[];
    const real = hosts[0].hostKey;
    hosts[0].hostKey = "SHA256:" + "A".repeat(43);
    await c.stack.setConfig({ "k3s-cluster:hosts": JSON.stringify(hosts) });
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, new RegExp(`eng-k-s0 \\(198\\.51\\.100\\.130:22\\) presented host key ${real.replace(/[+/]/g, "\\$&")}, not the pinned SHA256:A{43}`));
    const node = c.node("eng-k-s0");
    const left = await node.exec("ls /etc/k3s-cluster /usr/local/bin/k3s 2>&1 || true");
    assert.match(left.stdout, /No such file/, "nothing was installed");
  });

  it("a user-supplied token (autoTokenSharing false) reaches every node and is proven taken; waitForToken false starts agents alongside", async () => {
    const token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    const c = cluster({
      prefix: "eng-u", servers: 1, agents: 1, firstOctet: 135, knobs: FAST_KNOBS,
      config: { "k3s-cluster:autoTokenSharing": "false", "k3s-cluster:waitForToken": "false" },
      secrets: { "k3s-cluster:token": token },
    });
    await c.prepare();
    const r = await c.stack.run(["up", "--yes", "--skip-preview"]);
    assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), "the token is not printed");
    const list = await c.waitForReady(2);
    assert.equal(list.filter((n) => n.status === "Ready").length, 2, JSON.stringify(list));
    const l = await c.leaks([token]);
    assert.deepEqual([...l.transcript, ...l.cmdlines, ...l.journals], []);
    assert.deepEqual(l.files.filter((f) => !f.private), []);
  });
});
