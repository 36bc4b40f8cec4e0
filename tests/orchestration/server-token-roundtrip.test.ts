// The serialized ServerToken provider, loaded in a fresh process as the engine's dynamic-provider host does,
// verifies a simulated k3s server on a test node over real SSH: create returns the token that is on the
// node, update re-verifies, and a server that did not take the expected token fails naming the step.
// Test nodes: 198.51.100.200–.209 (this file's slice of the address plan).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { TestNode, startNodes, testSshKey } from "../rig/nodes";
import { installSimulatedK3s, startSimulatedK3s } from "../helpers/simulated-k3s";
import { HostResult, runInProviderHost, serializeFromTsc, serializeUnderTsx } from "../helpers/serialize-provider";

const IP = "198.51.100.200";
const NAME = "st-server-0";

let node: TestNode;
before(async () => {
  [node] = await startNodes([{ name: NAME, ip: IP }]);
  await installSimulatedK3s(node, `cluster-init: true\nnode-name: ${NAME}\n`);
  await startSimulatedK3s(node, { tokenDelay: 1, apiReadyDelay: 3, nodeReadyDelay: 1 });
});

after(async () => {
  await node?.stop();
});

function props(overrides: Record<string, unknown> = {}) {
  return {
    serverId: "i-sim0", host: IP, sshPort: 22, username: "root", privateKey: testSshKey().privateKey,
    expectedHostKey: "", apiPort: 6443, dataDir: "/var/lib/rancher/k3s", nodeName: NAME,
    timeoutSeconds: 60, intervalSeconds: 1, expectedToken: "", revision: "r1", ...overrides,
  };
}

async function onNode(cmd: string): Promise<string> {
  const r = await node.exec(cmd);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function assertVerified(r: HostResult, label: string) {
  assert.equal(r.error, undefined, `${label}: ${r.error}`);
  const outs = r.result.outs;
  const onDisk = await onNode("cat /var/lib/rancher/k3s/server/token");
  assert.match(outs.token, /^K10[0-9a-f]{64}::server:[0-9a-f]{32}$/);
  assert.equal(outs.token, onDisk, "the token returned is the one the server wrote");
  const ca = fs.readFileSync(path.join(node.rootDir, "var/lib/rancher/k3s/server/tls/server-ca.crt"));
  assert.equal(outs.caHash, createHash("sha256").update(ca).digest("hex"), "CA hash pins the server's CA");
  assert.equal(outs.serverUrl, `https://${IP}:6443`);
  assert.match(outs.hostKeyFingerprint, /^SHA256:/);
  assert.equal(outs.report.ok, true);
  assert.equal(outs.report.steps.length, 7);
  const stored = JSON.stringify({ ...outs, token: undefined, agentToken: undefined });
  assert.ok(!stored.includes(onDisk.split("::server:")[1]), "no token in any other output");
  console.log(`${label}: verified in ${r.ms} ms (steps: ${outs.report.steps.map((s: any) => `${s.step}:${s.ms}ms`).join(" ")})`);
}

for (const [label, serialize] of [["tsx", serializeUnderTsx], ["tsc", async () => serializeFromTsc()]] as const) {
  test(`serialized provider (${label}) creates, re-verifies and refuses a wrong expected token against a simulated server`, async () => {
    const { text } = await serialize();
    const wrong = "K10" + "0".repeat(64) + "::server:" + "f".repeat(32);
    const [created, updated, refused] = runInProviderHost(text, [
      ["create", props()],
      ["update", "i-sim0-token", props(), props({ revision: "r2" })],
      ["create", props({ expectedToken: wrong, timeoutSeconds: 30 })],
    ], 180_000);
    await assertVerified(created, `${label} create`);
    await assertVerified(updated, `${label} update`);
    assert.equal(updated.result.outs.revision, "r2");
    assert.ok(refused.error, "a server that did not take the expected token fails");
    assert.match(refused.error!, /step \d \(/);
    const real = await onNode("cat /var/lib/rancher/k3s/server/token");
    for (const secret of [wrong, real, real.split("::server:")[1], "f".repeat(32)]) {
      assert.ok(!refused.error!.includes(secret), "the error holds no token");
    }
    console.log(`${label} refused: ${refused.error}`);
  });
}
