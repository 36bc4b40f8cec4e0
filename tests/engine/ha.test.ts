// HA on the real engine: 3 servers + 2 agents, servers joining embedded etcd one at a time.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClusterUnderTest, FAST_KNOBS } from "./harness";

describe("pulumi up of 3 servers + 2 agents on the real engine", { timeout: 15 * 60_000 }, () => {
  const c = new ClusterUnderTest({ prefix: "eng-h", servers: 3, agents: 2, firstOctet: 110, knobs: FAST_KNOBS, knownHostKeys: true });

  before(() => c.prepare());
  after(() => c.teardown());

  it("every node joins; each server starts k3s only after the previous one is active; agents after the first", async () => {
    await c.stack.run(["up", "--yes", "--skip-preview"], { echo: true });
    const list = await c.waitForReady(5);
    assert.deepEqual(list.map((n) => `${n.name} ${n.status} ${n.roles}`).sort(), [
      "eng-h-a0 Ready <none>", "eng-h-a1 Ready <none>",
      "eng-h-s0 Ready control-plane,etcd", "eng-h-s1 Ready control-plane,etcd", "eng-h-s2 Ready control-plane,etcd",
    ]);
    // systemd's own timestamps: a joining server's k3s starts after its predecessor turned active (and was verified).
    const s = await Promise.all([0, 1, 2].map((i) => c.unitTimes(`eng-h-s${i}`)));
    for (let i = 1; i < 3; i++) {
      assert.ok(s[i].startMs! >= s[i - 1].activeMs!,
        `server ${i} started k3s at ${s[i].startMs}, before server ${i - 1} was active at ${s[i - 1].activeMs}`);
    }
    for (const agent of ["eng-h-a0", "eng-h-a1"]) {
      const t = await c.unitTimes(agent);
      assert.ok(t.startMs! >= s[0].activeMs!, `${agent} started before the first server was active`);
    }
    const kubectl = await c.kubectlGetNodes();
    assert.ok(kubectl.ok, kubectl.text);
  });

  it("a second pulumi up changes nothing and re-runs nothing on the nodes", async () => {
    const before = await Promise.all([0, 1, 2].map((i) => c.unitTimes(`eng-h-s${i}`)));
    const r = await c.stack.run(["up", "--yes", "--skip-preview"]);
    assert.match(r.stdout, /unchanged/);
    assert.doesNotMatch(r.stdout, /\bupdated\b|\bcreated\b|\breplaced\b/);
    const again = await Promise.all([0, 1, 2].map((i) => c.unitTimes(`eng-h-s${i}`)));
    assert.deepEqual(again, before, "no k3s unit restarted");
  });

  it("pulumi destroy empties the stack", async () => {
    await c.stack.run(["destroy", "--yes", "--skip-preview"]);
    const out = await c.stack.run(["stack", "--show-urns"]);
    assert.doesNotMatch(out.stdout, /RemoteCommand|ServerToken/);
  });
});
