// The changes a running cluster refuses, decided from the previous deployment's values.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { clusterPolicyProvider, firstServerProblem, movedHostProblem, serverRemovalProblem, versionChangeProblem } from "../../components/cluster-policy";

describe("cluster policy", () => {
  it("allows the same release, a patch, a new k3s build and one minor version up", () => {
    for (const to of ["v1.34.3+k3s1", "v1.34.4+k3s1", "v1.34.3+k3s2", "v1.35.0+k3s1", "v1.35.2-rc1+k3s1"]) {
      assert.equal(versionChangeProblem("v1.34.3+k3s1", to), undefined, to);
    }
    assert.equal(versionChangeProblem(undefined, "v1.30.0+k3s1"), undefined, "a new cluster has nothing to compare with");
  });

  it("refuses a downgrade naming the key and both versions", () => {
    assert.equal(versionChangeProblem("v1.34.3+k3s1", "v1.34.2+k3s1"),
      "k3s-cluster:k3sVersion v1.34.2+k3s1 is older than the running v1.34.3+k3s1: a downgrade is refused (k3s does not support it; restore from an etcd snapshot instead)");
    assert.match(versionChangeProblem("v1.35.0+k3s1", "v1.35.0-rc2+k3s1") ?? "", /older than the running/);
  });

  it("refuses skipping a minor version", () => {
    assert.equal(versionChangeProblem("v1.33.5+k3s1", "v1.35.0+k3s1"),
      "k3s-cluster:k3sVersion v1.33.5+k3s1 → v1.35.0+k3s1 skips a minor version: Kubernetes supports upgrades one minor version at a time (go to v1.34.x first)");
  });

  it("lets a minority of servers leave in one update, not a majority", () => {
    assert.equal(serverRemovalProblem("servers", 3, 1), "k3s-cluster:servers 3 → 1 servers would remove 2 of 3 etcd members in one update; at most 1 can leave at once and keep a majority (remove them over several updates)");
    assert.equal(serverRemovalProblem("hosts", 5, 3), undefined);
    assert.match(serverRemovalProblem("hosts", 5, 1) ?? "", /^k3s-cluster:hosts 5 → 1 servers would remove 4 of 5/);
    assert.equal(serverRemovalProblem("servers", 1, 3), undefined);
    assert.equal(serverRemovalProblem("servers", undefined, 1), undefined);
  });

  it("keeps a running server first: the first server listed may be replaced, not by a newcomer", async () => {
    assert.equal(firstServerProblem("hosts", ["s0", "s1", "s2"], ["s1", "s2", "s3"]), undefined, "s0 replaced, s1 leads");
    assert.equal(firstServerProblem("hosts", undefined, ["s9"]), undefined, "a new cluster has nothing to keep");
    assert.equal(firstServerProblem("hosts", ["s0", "s1", "s2"], ["s3", "s0", "s1"]),
      "k3s-cluster:hosts lists s3 first, but it is not a server of the running cluster (s0, s1, s2); the first server is the one the others join through and a new one would start an empty cluster: list a running server first (s0, s1)");
    assert.match(firstServerProblem("hosts", ["s0"], ["s1"]) ?? "", /s1 first.*\(s0\).*keep at least one running server and list it first/);
    assert.match(firstServerProblem("servers", ["d-server-0"], ["d-server-1"]) ?? "",
      /^k3s-cluster:servers lists d-server-1 first.*retire fewer servers at once \(a single server is replaced by going to 3 servers first\)$/);
    const r = await clusterPolicyProvider.check!({ k3sVersion: "v1.34.3+k3s1", serversKey: "hosts", servers: ["s0"] },
      { k3sVersion: "v1.34.3+k3s1", serversKey: "hosts", servers: ["s1"] });
    assert.deepEqual(r.failures?.map((f) => f.property), ["servers"]);
  });

  it("check reports the refusal against the old inputs, so preview fails before anything changes", async () => {
    const olds = { k3sVersion: "v1.34.3+k3s1", serversKey: "hosts", servers: ["a", "b", "c"] };
    const ok = await clusterPolicyProvider.check!(olds, { ...olds, k3sVersion: "v1.35.1+k3s1" });
    assert.deepEqual(ok.failures, []);
    const bad = await clusterPolicyProvider.check!(olds, { k3sVersion: "v1.33.0+k3s1", serversKey: "hosts", servers: ["a"] });
    assert.deepEqual(bad.failures?.map((f) => f.property), ["k3sVersion", "servers"]);
  });
});

describe("a host that moved to another machine", () => {
  it("is refused naming it and both addresses; a new name and the old one removed is how a machine is replaced", async () => {
    assert.equal(movedHostProblem({ a: "203.0.113.1:22", b: "203.0.113.2:22" }, { a: "203.0.113.1:22", c: "203.0.113.3:22" }), undefined);
    assert.equal(movedHostProblem({ a: "203.0.113.1:22" }, { a: "203.0.113.9:22" }),
      "k3s-cluster:hosts a moved from 203.0.113.1:22 to 203.0.113.9:22: a node keeps its machine; to replace a machine, add the new one under a new name and remove the old entry in the same update (the new node joins before the old one leaves)");
    const r = await clusterPolicyProvider.check!({ k3sVersion: "v1.34.3+k3s1", serversKey: "hosts", servers: ["a"], machines: { a: "1.1.1.1:22" } },
      { k3sVersion: "v1.34.3+k3s1", serversKey: "hosts", servers: ["a"], machines: { a: "1.1.1.2:22" } });
    assert.deepEqual(r.failures?.map((f) => f.property), ["machines"]);
  });
});
