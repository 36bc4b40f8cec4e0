// Day two on the real engine: a rolling upgrade, a token rotation, scale-in of agents and servers, and the
// failures halfway (a drain that cannot finish, a node that does not come back) — each through the ordinary
// `pulumi up` after a config change, asserted from the cluster's own answers.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:https";
import { apiSampler, ClusterUnderTest, FAST_KNOBS, stateUrns, type UnitTimes } from "./harness";
import { configureKnobs } from "./hosts";

const NEXT = "v1.35.0+k3s1";

/** One unit started only once the other was active again: they were never down together. */
const apart = (a: UnitTimes, b: UnitTimes) => a.startMs! >= b.activeMs! || b.startMs! >= a.activeMs!;

/** A node's join token file: mode and owner, and the token it holds. */
async function tokenFile(c: ClusterUnderTest, node: string): Promise<{ mode: string; token: string }> {
  const r = await c.node(node).exec("stat -c '%a %U' /etc/rancher/k3s/cluster-token && cat /etc/rancher/k3s/cluster-token");
  const [mode, ...rest] = r.stdout.split("\n");
  return { mode, token: rest.join("\n").trim() };
}

async function passwordWorks(ip: string, password: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    http.get({ host: ip, port: 6443, path: "/v1-k3s/config", rejectUnauthorized: false, auth: `node:${password}` }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
}

describe("day two on HA 3+2: rolling upgrade and token rotation", { timeout: 30 * 60_000 }, () => {
  const c = new ClusterUnderTest({ prefix: "eng-d", servers: 3, agents: 2, firstOctet: 170, knobs: FAST_KNOBS, knownHostKeys: true });
  const servers = ["eng-d-s0", "eng-d-s1", "eng-d-s2"];
  const agents = ["eng-d-a0", "eng-d-a1"];

  before(() => c.deploy());
  after(() => c.teardown());

  it("refuses a downgrade and a skipped minor version at preview, naming the key and both versions", async () => {
    await c.stack.setConfig(c.releaseConfig("v1.33.9+k3s1"));
    const down = await c.stack.run(["preview"], { allowFail: true });
    assert.notEqual(down.code, 0);
    assert.match(down.stdout + down.stderr, /k3s-cluster:k3sVersion v1\.33\.9\+k3s1 is older than the running v1\.34\.3\+k3s1/);
    await c.stack.setConfig(c.releaseConfig("v1.36.0+k3s1"));
    const skip = await c.stack.run(["preview"], { allowFail: true });
    assert.match(skip.stdout + skip.stderr, /v1\.34\.3\+k3s1 → v1\.36\.0\+k3s1 skips a minor version/);
  });

  it(`upgrades to ${NEXT}: servers one at a time, each verified, then agents one at a time; the API answers throughout`, async () => {
    const before: Record<string, UnitTimes> = {};
    for (const n of [...servers, ...agents]) before[n] = await c.unitTimes(n);
    await c.stack.setConfig(c.releaseConfig(NEXT));
    const sampler = apiSampler(["198.51.100.170", "198.51.100.171", "198.51.100.172"]);
    await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    const api = sampler.stop();
    const list = await c.waitForReady(5);
    assert.deepEqual(list.map((n) => `${n.name} ${n.status} ${n.version}`).sort(),
      [...agents, ...servers].sort().map((n) => `${n} Ready ${NEXT}`));
    const t: Record<string, UnitTimes> = {};
    for (const n of [...servers, ...agents]) {
      t[n] = await c.unitTimes(n);
      assert.ok(t[n].startMs! > before[n].activeMs!, `${n} restarted for the upgrade`);
    }
    for (let i = 1; i < 3; i++) {
      assert.ok(t[servers[i]].startMs! >= t[servers[i - 1]].activeMs!, `${servers[i]} restarted before ${servers[i - 1]} was back`);
    }
    const lastServer = Math.max(...servers.map((n) => t[n].activeMs!));
    for (const a of agents) assert.ok(t[a].startMs! >= lastServer, `${a} upgraded before every server had`);
    assert.ok(apart(t[agents[0]], t[agents[1]]), "at most one agent (maxUnavailableAgents 1) was down at a time");
    assert.ok(api.samples > 20, `the API was sampled (${api.samples})`);
    assert.equal(api.longestGapMs <= 400, true, `some server answered throughout (longest gap ${api.longestGapMs} ms)`);
    await c.stack.run(["preview", "--expect-no-changes"]);
  });

  it("rotates the token: servers restart one at a time and are verified with the new one, every token file holds it, the old one gets 401, agents keep running", async () => {
    const old = await c.secrets();
    const oldPassword = String(old.outputs.token).split(":").pop()!;
    const before: Record<string, UnitTimes> = {};
    for (const n of [...servers, ...agents]) before[n] = await c.unitTimes(n);
    await c.stack.setConfig({ "k3s-cluster:tokenRotation": "2026-11" });
    await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    const now = await c.secrets();
    const token = String(now.outputs.token);
    assert.notEqual(token, old.outputs.token);
    assert.match(token, /^K10[0-9a-f]{64}::server:[0-9a-f]{32}$/);
    assert.equal(token.split("::")[0], String(old.outputs.token).split("::")[0], "same cluster CA");
    const newPassword = token.split(":").pop()!;
    assert.equal(await passwordWorks("198.51.100.170", oldPassword), 401, "the old token no longer authenticates");
    assert.equal(await passwordWorks("198.51.100.170", newPassword), 200, "the new one does");
    for (const n of [...servers.slice(1), ...agents]) {
      const file = await tokenFile(c, n);
      assert.equal(file.mode, "600 root", `${n}'s token file`);
      assert.equal(file.token, n.includes("-s") ? token : String(now.outputs.agentToken), `${n}'s token file holds the new token`);
    }
    for (const n of agents) assert.deepEqual(await c.unitTimes(n), before[n], `${n} kept running`);
    const t = await Promise.all(servers.map((n) => c.unitTimes(n)));
    for (let i = 0; i < 3; i++) assert.ok(t[i].startMs! > before[servers[i]].activeMs!, `${servers[i]} restarted to drop the old token`);
    for (let i = 1; i < 3; i++) assert.ok(t[i].startMs! >= t[i - 1].activeMs!, `${servers[i]} restarted before ${servers[i - 1]} was back`);
    const state = await c.stack.exportState(true);
    assert.ok(!state.includes(oldPassword), "the state no longer holds the old token");
    assert.equal((await c.waitForReady(5)).filter((n) => n.status === "Ready").length, 5);
  });

  it("an agent that does not come back after its upgrade stops pulumi up naming it and the step; the cluster keeps serving", async () => {
    // The new release's k3s exits at once on this agent: it never comes back.
    await configureKnobs(c.node("eng-d-a1"), { ...FAST_KNOBS, faults: { exitAtStart: 1 } });
    await c.stack.setConfig({ ...c.releaseConfig("v1.35.1+k3s1"), "k3s-cluster:tokenTimeout": "30" });
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /eng-d-a1 update failed with exit code \d+ on 198\.51\.100\.174: [\s\S]*?k3s-agent is still '\w+' after 30 s/);
    const list = await c.nodeList();
    for (const n of servers) assert.ok(list.some((x) => x.name === n && x.status === "Ready"), `${n} serving: ${JSON.stringify(list)}`);
    assert.equal(await passwordWorks("198.51.100.171", String((await c.secrets()).outputs.token).split(":").pop()!), 200, "the API answers");
  });
});

describe("day two: servers 5 → 3", { timeout: 30 * 60_000 }, () => {
  const c = new ClusterUnderTest({ prefix: "eng-e", servers: 5, agents: 1, firstOctet: 186, knobs: FAST_KNOBS, knownHostKeys: true });

  before(() => c.deploy());
  after(() => c.teardown());

  it("refuses 5 → 1 at preview: a majority of etcd members would leave at once", async () => {
    await c.declare(1, 1);
    const r = await c.stack.run(["preview"], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /k3s-cluster:hosts 5 → 1 servers would remove 4 of 5 etcd members in one update; at most 2 can leave at once/);
  });

  it("5 → 3: the two servers leave etcd one at a time; the node list and the members are exactly the declared ones", async () => {
    await c.declare(3, 1);
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    assert.match(r.stdout, /node eng-e-s4 removed from the cluster/);
    assert.match(r.stdout, /node eng-e-s3 removed from the cluster/);
    assert.deepEqual((await c.waitForReady(4)).map((n) => `${n.name} ${n.status}`).sort(),
      ["eng-e-a0 Ready", "eng-e-s0 Ready", "eng-e-s1 Ready", "eng-e-s2 Ready"]);
    const members = await c.node("eng-e-s0").exec("k3s sim-etcd member list");
    const names = members.stdout.trim().split("\n").map((l) => l.split(/[\s,]+/).find((w) => /^eng-e-s\d/.test(w)) ?? l).sort();
    assert.deepEqual(names.map((n) => n.replace(/-[0-9a-f]{8}$/, "")), ["eng-e-s0", "eng-e-s1", "eng-e-s2"], members.stdout);
    for (const gone of ["eng-e-s3", "eng-e-s4"]) {
      const left = await c.node(gone).exec("ls /usr/local/bin/k3s 2>&1 || true");
      assert.match(left.stdout, /No such file/, `${gone} was given back clean`);
    }
  });
});

describe("day two on 1+2: scale in, upgrade, rotation, and failures halfway", { timeout: 30 * 60_000 }, () => {
  const c = new ClusterUnderTest({ prefix: "eng-i", servers: 1, agents: 3, firstOctet: 180, knobs: FAST_KNOBS, knownHostKeys: true });

  before(() => c.deploy());
  after(() => c.teardown());

  it("a removed agent is drained, its Node deleted and k3s removed from it; the rest keep running", async () => {
    const kept = await c.unitTimes("eng-i-a0");
    await c.declare(1, 2);
    const plan = await c.plan();
    const changes = plan.filter((st) => st.op !== "same");
    // The removed node's own resources go; the whole-cluster check and the policy (which records the
    // declared nodes, to judge the next change against) are told the new list.
    assert.ok(changes.every((st) => (st.op === "delete" && /eng-i-a2/.test(st.urn)) ||
      (st.op === "update" && (st.urn.endsWith("eng-i-cluster-check") || st.urn.endsWith("eng-i-policy")))),
      changes.map((st) => `${st.op} ${st.urn}`).join("\n"));
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    assert.match(r.stdout, /node eng-i-a2 removed from the cluster/);
    assert.deepEqual((await c.nodeList()).map((n) => `${n.name} ${n.status}`).sort(), ["eng-i-a0 Ready", "eng-i-a1 Ready", "eng-i-s0 Ready"]);
    const left = await c.node("eng-i-a2").exec("ls /usr/local/bin/k3s /var/lib/rancher/k3s /etc/rancher/k3s 2>&1; systemctl is-active k3s-agent || true");
    assert.match(left.stdout, /No such file.*\n.*No such file.*\n.*No such file/s);
    assert.deepEqual(await c.unitTimes("eng-i-a0"), kept);
    assert.ok(!(await stateUrns(c.stack)).some((u) => u.includes("eng-i-a2")));
  });

  it(`1+2: upgrades to ${NEXT} (the server, then the agents one at a time) and rotates the token`, async () => {
    const nodes = ["eng-i-s0", "eng-i-a0", "eng-i-a1"];
    const before: Record<string, UnitTimes> = {};
    for (const n of nodes) before[n] = await c.unitTimes(n);
    await c.stack.setConfig(c.releaseConfig(NEXT));
    await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    assert.deepEqual((await c.waitForReady(3)).map((n) => `${n.name} ${n.status} ${n.version}`).sort(), nodes.sort().map((n) => `${n} Ready ${NEXT}`));
    const t: Record<string, UnitTimes> = {};
    for (const n of nodes) t[n] = await c.unitTimes(n);
    for (const a of ["eng-i-a0", "eng-i-a1"]) assert.ok(t[a].startMs! >= t["eng-i-s0"].activeMs!, `${a} upgraded after the server`);
    assert.ok(apart(t["eng-i-a0"], t["eng-i-a1"]), "one agent at a time");

    const old = String((await c.secrets()).outputs.token);
    await c.stack.setConfig({ "k3s-cluster:tokenRotation": "2026-12" });
    await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    const now = await c.secrets();
    assert.notEqual(now.outputs.token, old);
    assert.equal(await passwordWorks("198.51.100.180", old.split(":").pop()!), 401, "the old token no longer authenticates");
    assert.equal(await passwordWorks("198.51.100.180", String(now.outputs.token).split(":").pop()!), 200, "the new one does");
    for (const a of ["eng-i-a0", "eng-i-a1"]) {
      assert.deepEqual(await tokenFile(c, a), { mode: "600 root", token: String(now.outputs.agentToken) }, `${a}'s token file holds the new agent token`);
      assert.deepEqual(await c.unitTimes(a), t[a], `${a} kept running`);
    }
    await c.stack.run(["preview", "--expect-no-changes"]);
  });

  it("a drain that cannot finish stops pulumi up naming the node and the pod, and the node keeps serving", async () => {
    // The simulator places its workloads when its k3s starts: restart the agent with a pod nothing may evict.
    await configureKnobs(c.node("eng-i-a1"), { ...FAST_KNOBS, faults: { undrainablePod: true } });
    await c.node("eng-i-a1").exec("systemctl restart k3s-agent");
    await c.waitForReady(3);
    // A removal runs the drain its membership recorded: set the bound in one update, remove in the next.
    await c.stack.setConfig({ "k3s-cluster:drainTimeout": "5" });
    const stored = await c.stack.run(["up", "--yes", "--skip-preview"]);
    assert.doesNotMatch(stored.stdout, /waiting up to \d+s for node/, "a new drain bound is stored without re-checking any node");
    await c.declare(1, 1);
    const r = await c.stack.run(["up", "--yes", "--skip-preview"], { allowFail: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /node eng-i-a1 could not be drained within 5s; pods that would not leave: default\/guarded-[\w-]+\b/);
    const list = await c.nodeList();
    assert.ok(list.some((n) => n.name === "eng-i-a1" && n.status === "Ready"), `eng-i-a1 uncordoned and Ready: ${JSON.stringify(list)}`);
    assert.ok((await stateUrns(c.stack)).some((u) => u.endsWith("eng-i-a1-member")), "its membership is still in the state");
  });
});
