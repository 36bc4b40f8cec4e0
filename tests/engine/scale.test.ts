// Day two on the real engine: a running cluster grows through the ordinary `pulumi up` after a config change.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClusterUnderTest, FAST_KNOBS, type UnitTimes } from "./harness";

describe("scale out on the real engine", { timeout: 20 * 60_000 }, () => {
  const c = new ClusterUnderTest({
    prefix: "eng-s", servers: 3, agents: 2, firstOctet: 160, knobs: FAST_KNOBS, knownHostKeys: true,
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
});
