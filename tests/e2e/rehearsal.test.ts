// The end-to-end rehearsal of `pulumi up`: the program's registered graph carried out on test nodes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runRehearsal, type RehearsalRun } from "./run-rehearsal";
import type { RehearsalResult } from "./rehearse";

// Start-up shaped like real k3s but shorter, so the suite fits CI: token early, API later, node Ready after.
const KNOBS = { tokenDelay: 1, apiReadyDelay: 6, nodeReadyDelay: 2, etcdJoinDelay: 2, agentJoinDelay: 1 };

function event(result: RehearsalResult, pattern: RegExp) {
  return result.events.filter((e) => pattern.test(e.name));
}

function verificationEvents(result: RehearsalResult) {
  return result.events.filter((e) => e.type.startsWith("pulumi-nodejs:dynamic"));
}

function assertSecretsKept(run: RehearsalRun) {
  const s = run.result.secrecy;
  assert.ok(s.cmdlineSamples > 10, `command lines were sampled (${s.cmdlineSamples} samples)`);
  assert.deepEqual(s.cmdlineLeaks, [], "no command line on the host or any node held a token");
  assert.deepEqual(s.logLeaks, [], "no log line held a token");
  assert.deepEqual(s.plaintextInState, [], "the state holds the token only as a secret");
  const exposed = s.tokenFiles.filter((f) => !f.private);
  assert.deepEqual(exposed, [], "every file holding a token is root-owned 0600");
  assert.ok(s.tokenFiles.length > 0, "the token files themselves were found by the scan");
}

function assertGate(result: RehearsalResult) {
  const verifications = verificationEvents(result);
  assert.ok(verifications.length >= 1, "a verification resource ran");
  const firstVerified = Math.min(...verifications.filter((v) => v.ok).map((v) => v.endMs));
  for (const agent of event(result, /-agent-\d+$/)) {
    assert.ok(
      agent.startMs >= firstVerified,
      `${agent.type} ${agent.name} started at ${agent.startMs} ms, before the token was verified at ${firstVerified} ms`,
    );
  }
}

describe("rehearsal of pulumi up on test nodes", () => {
  it("1 server + 2 agents: agents join with the verified token, secrets kept", async () => {
    const run = await runRehearsal({
      clusterName: "rehearsal",
      servers: 1,
      agents: 2,
      firstOctet: 100,
      knobs: KNOBS,
      tokenTimeout: 120,
      pollInterval: 1,
    });
    const r = run.result;
    assert.equal(r.error, undefined, `rehearsal error: ${r.error}`);
    assert.ok(r.ok);
    assertGate(r);
    const names = r.nodeList.map((n) => n.name).sort();
    assert.equal(names.length, 3, `the server lists 3 nodes: ${JSON.stringify(r.nodeList)}`);
    assert.ok(r.nodeList.every((n) => n.status === "Ready"), JSON.stringify(r.nodeList));
    assert.equal(r.outputs.kubeconfigWorks, true, `kubectl get nodes with the exported kubeconfig: ${r.kubectlGetNodes}`);
    assert.match(r.kubectlGetNodes ?? "", /NAME\s+STATUS\s+ROLES/);
    assertSecretsKept(run);
  });

  it("3 servers + 2 agents (HA): servers join one at a time, agents after the token", async () => {
    const run = await runRehearsal({
      clusterName: "rehearsal-ha",
      servers: 3,
      agents: 2,
      firstOctet: 110,
      knobs: KNOBS,
      tokenTimeout: 120,
      pollInterval: 1,
    });
    const r = run.result;
    assert.equal(r.error, undefined, `rehearsal error: ${r.error}`);
    assertGate(r);
    // Each server's k3s starts only after the previous server's verification passed.
    const verifications = verificationEvents(r).sort((a, b) => a.endMs - b.endMs);
    assert.equal(verifications.length, 3, "one verification per server");
    for (let i = 1; i < 3; i++) {
      const start = r.unitStarts[`e2e-s${i}`]?.startMs;
      assert.ok(start !== undefined, `server ${i}'s k3s unit started`);
      assert.ok(
        start >= verifications[i - 1].endMs,
        `server ${i} started k3s at ${start} ms, before server ${i - 1} was verified at ${verifications[i - 1].endMs} ms`,
      );
    }
    assert.equal(r.nodeList.length, 5, JSON.stringify(r.nodeList));
    assertSecretsKept(run);
  });

  it("a server whose k3s never becomes ready fails verification, naming the step; no agent is created", async () => {
    const run = await runRehearsal({
      clusterName: "rehearsal-never",
      servers: 1,
      agents: 1,
      firstOctet: 120,
      knobs: { ...KNOBS, faults: { apiNeverReady: true } },
      tokenTimeout: 30,
      pollInterval: 1,
    });
    const r = run.result;
    assert.ok(!r.ok);
    assert.match(r.error ?? "", /step [237]/i);
    assert.equal(event(r, /-agent-\d+$/).length, 0, "no agent resource was created");
  });

  it("a token whose CA hash does not match fails at step 6 at once", async () => {
    const run = await runRehearsal({
      clusterName: "rehearsal-ca",
      servers: 1,
      agents: 1,
      firstOctet: 125,
      knobs: { ...KNOBS, faults: { caMismatch: true } },
      tokenTimeout: 120,
      pollInterval: 1,
    });
    const r = run.result;
    assert.ok(!r.ok);
    assert.match(r.error ?? "", /step 6/i);
    const verification = verificationEvents(r)[0];
    assert.ok(verification.endMs - verification.startMs < 60_000, "failed without waiting out the deadline");
    assert.equal(event(r, /-agent-\d+$/).length, 0, "no agent resource was created");
  });

  it("a slow server that is ready within tokenTimeout still succeeds", async () => {
    const run = await runRehearsal({
      clusterName: "rehearsal-slow",
      servers: 1,
      agents: 1,
      firstOctet: 130,
      knobs: { ...KNOBS, apiReadyDelay: 25 },
      tokenTimeout: 60,
      pollInterval: 1,
    });
    const r = run.result;
    assert.equal(r.error, undefined, `rehearsal error: ${r.error}`);
    assert.equal(r.nodeList.length, 2, JSON.stringify(r.nodeList));
  });

  it("autoTokenSharing=false: the user's token is configured on every node and the server proves it took it", async () => {
    const password = "b7e1c0de5a1f4e2d9c3b8a7f6e5d4c3b";
    const run = await runRehearsal({
      clusterName: "rehearsal-own",
      servers: 1,
      agents: 1,
      firstOctet: 135,
      knobs: KNOBS,
      tokenTimeout: 60,
      pollInterval: 1,
      extraConfig: { "k3s-cluster:autoTokenSharing": "false", "k3s-cluster:token": password },
    });
    const r = run.result;
    assert.equal(r.error, undefined, `rehearsal error: ${r.error}`);
    assert.equal(r.nodeList.length, 2, JSON.stringify(r.nodeList));
    assert.ok(!run.output.includes(password), "the user's token appears nowhere in the rehearsal's output");
    assert.deepEqual(r.secrecy.plaintextInState, []);
    assert.deepEqual(r.secrecy.cmdlineLeaks, []);
  });

  it("waitForToken=false with a user token: agents start alongside the server and still join", async () => {
    const run = await runRehearsal({
      clusterName: "rehearsal-nowait",
      servers: 1,
      agents: 1,
      firstOctet: 137,
      knobs: KNOBS,
      tokenTimeout: 90,
      pollInterval: 1,
      extraConfig: {
        "k3s-cluster:waitForToken": "false",
        "k3s-cluster:autoTokenSharing": "false",
        "k3s-cluster:token": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
      },
    });
    const r = run.result;
    assert.equal(r.error, undefined, `rehearsal error: ${r.error}`);
    const verified = verificationEvents(r)[0];
    const agent = event(r, /-agent-0$/)[0];
    assert.ok(agent.startMs < verified.endMs, `the agent instance waited for the verification (${agent.startMs} ≥ ${verified.endMs} ms)`);
    assert.equal(r.nodeList.length, 2, JSON.stringify(r.nodeList));
  });
});
