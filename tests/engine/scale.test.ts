// Day two on the real engine: a running cluster grows through the ordinary `pulumi up` after a config change.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClusterUnderTest, FAST_KNOBS, type UnitTimes } from "./harness";

describe("scale out on the real engine", { timeout: 20 * 60_000 }, () => {
  const c = new ClusterUnderTest({
    prefix: "eng-s", servers: 4, agents: 3, firstOctet: 160, knobs: FAST_KNOBS, knownHostKeys: true,
    initial: { servers: 1, agents: 1 },
  });
  const started = new Map<string, UnitTimes>();

  before(() => c.prepare());
  after(() => c.teardown());

  it("1 server + 1 agent come up", async () => {
    await c.stack.run(["up", "--yes", "--skip-preview"]);
    assert.equal((await c.waitForReady(2)).filter((n) => n.status === "Ready").length, 2);
    for (const n of ["eng-s-s0", "eng-s-a0"]) started.set(n, await c.unitTimes(n));
  });

  it("to 3 servers + 2 agents: the plan only creates; new servers join one at a time; the old nodes keep running", async () => {
    await c.declare(3, 2);
    const plan = await c.plan();
    const changes = plan.filter((st) => st.op !== "same");
    assert.ok(changes.length > 0);
    // Creates of the new nodes' resources; the policy and the whole-cluster check are told the new lists.
    const other = changes.filter((st) => !(st.op === "create" && /eng-s-(s1|s2|a1)/.test(st.urn))
      && !(st.op === "update" && /eng-s-(policy|cluster-check)$/.test(st.urn)));
    assert.deepEqual(other.map((st) => `${st.op} ${st.urn.split("::").pop()}`), [], "only the new nodes' resources are created");
    await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    const list = await c.waitForReady(5);
    assert.deepEqual(list.filter((n) => n.status === "Ready").map((n) => n.name).sort(),
      ["eng-s-a0", "eng-s-a1", "eng-s-s0", "eng-s-s1", "eng-s-s2"]);
    for (const [n, t] of started) assert.deepEqual(await c.unitTimes(n), t, `${n}'s k3s unit was not restarted`);
    const s1 = await c.unitTimes("eng-s-s1");
    const s2 = await c.unitTimes("eng-s-s2");
    assert.ok(s2.startMs! >= s1.activeMs!, "the third server started k3s after the second was active");
  });

  it("a host that moved to another machine is refused at preview, naming it and both addresses", async () => {
    const hosts = JSON.parse((await c.stack.run(["config", "get", "k3s-cluster:hosts"])).stdout) as { name: string; address: string }[];
    const moved = hosts.map((h) => (h.name === "eng-s-a1" ? { ...h, address: "198.51.100.169" } : h));
    await c.stack.setConfig({ "k3s-cluster:hosts": JSON.stringify(moved) });
    const r = await c.stack.run(["preview"], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /k3s-cluster:hosts eng-s-a1 moved from 198\.51\.100\.\d+:22 to 198\.51\.100\.169:22: a node keeps its machine/);
  });

  it("replacing a server and an agent (new names in, old ones out) joins the new ones before the old ones leave", async () => {
    await c.declareNames(["eng-s-s0", "eng-s-s2", "eng-s-s3", "eng-s-a1", "eng-s-a2"]);
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    // The new server was verified (its ServerToken created) and the new agent joined before the old ones left.
    const at = (pattern: RegExp) => r.stdout.split("\n").findIndex((l) => pattern.test(l));
    const verified = at(/ServerToken eng-s-eng-s-s3-token created/);
    const newAgentJoined = at(/eng-s-eng-s-a2-member created/);
    const oldServerRemoved = at(/node eng-s-s1 removed from the cluster/);
    const oldAgentRemoved = at(/node eng-s-a0 removed from the cluster/);
    assert.ok(verified >= 0 && oldServerRemoved > verified, "the new server passed the seven steps before the old one left");
    assert.ok(newAgentJoined >= 0 && oldAgentRemoved > newAgentJoined, "the new agent joined before the old one left");
    const list = await c.waitForReady(5);
    assert.deepEqual(list.map((n) => `${n.name} ${n.status}`).sort(),
      ["eng-s-a1 Ready", "eng-s-a2 Ready", "eng-s-s0 Ready", "eng-s-s2 Ready", "eng-s-s3 Ready"]);
    const members = await c.node("eng-s-s0").exec("k3s sim-etcd member list -w json");
    const names = (JSON.parse(members.stdout) as { members: { name: string }[] }).members.map((m) => m.name.replace(/-[0-9a-f]{8}$/, "")).sort();
    assert.deepEqual(names, ["eng-s-s0", "eng-s-s2", "eng-s-s3"]);
    assert.deepEqual((await c.stack.outputs()).nodes, [
      { name: "eng-s-s0", role: "server", status: "Ready" }, { name: "eng-s-s2", role: "server", status: "Ready" },
      { name: "eng-s-s3", role: "server", status: "Ready" }, { name: "eng-s-a1", role: "agent", status: "Ready" },
      { name: "eng-s-a2", role: "agent", status: "Ready" },
    ], "the nodes output is the declared cluster");
  });
});

describe("replacing the first server on the real engine", { timeout: 20 * 60_000 }, () => {
  const c = new ClusterUnderTest({
    prefix: "eng-f", servers: 4, agents: 1, firstOctet: 150, knobs: FAST_KNOBS, knownHostKeys: true,
    initial: { servers: 3, agents: 1 },
  });

  before(() => c.deploy());
  after(() => c.teardown());

  it("the cluster survives, keeps its token, and the old first server leaves etcd and is given back clean", async () => {
    const before = await c.secrets();
    // A newcomer listed first would start an empty cluster: refused before anything changes.
    await c.declareNames(["eng-f-s3", "eng-f-s1", "eng-f-s2", "eng-f-a0"]);
    const refused = await c.stack.run(["preview"], { allowFail: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /k3s-cluster:hosts lists eng-f-s3 first, but it is not a server of the running cluster \(eng-f-s0, eng-f-s1, eng-f-s2\)/);
    await c.declareNames(["eng-f-s1", "eng-f-s2", "eng-f-s3", "eng-f-a0"]);
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    assert.match(r.stdout, /node eng-f-s0 removed from the cluster/);
    const after = await c.secrets();
    assert.equal(after.outputs.token, before.outputs.token, "the cluster's token did not change");
    assert.equal(after.outputs.agentToken, before.outputs.agentToken, "nor the token agents use");
    const list = await c.waitForReady(4);
    assert.deepEqual(list.map((n) => `${n.name} ${n.status}`).sort(), ["eng-f-a0 Ready", "eng-f-s1 Ready", "eng-f-s2 Ready", "eng-f-s3 Ready"]);
    const members = await c.node("eng-f-s1").exec("k3s sim-etcd member list -w json");
    const names = (JSON.parse(members.stdout) as { members: { name: string }[] }).members.map((m) => m.name.replace(/-[0-9a-f]{8}$/, "")).sort();
    assert.deepEqual(names, ["eng-f-s1", "eng-f-s2", "eng-f-s3"]);
    const left = await c.node("eng-f-s0").exec("ls /usr/local/bin/k3s /var/lib/rancher/k3s 2>&1 || true");
    assert.match(left.stdout, /No such file[\s\S]*No such file/);
    const kubectl = await c.kubectlGetNodes();
    assert.ok(kubectl.ok, `the kubeconfig output now reaches the new first server: ${kubectl.text}`);
    await c.stack.run(["preview", "--expect-no-changes"]);
  });
});
