// The ServerToken provider as the engine runs it — closure-serialized (from tsx and from tsc output), loaded
// in a fresh process by the dynamic-provider host — carries the node-side check with it and runs all seven
// steps on a test node: create returns the token on the node, update re-verifies as the sudo user, a server
// that did not take the expected token fails naming the step. Nothing of the check stays on the node.
// Test node: ver-prov-0 at 198.51.100.16 (this suite's slice: .10–.49).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { testSshKey } from "../rig/nodes";
import { HostResult, runInProviderHost, serializeFromTsc, serializeUnderTsx } from "../helpers/serialize-provider";
import { FAST, SimServer, TOKEN_FILE } from "./node-harness";

let server: SimServer;
before(async () => {
  server = await SimServer.boot("ver-prov-0", "198.51.100.16");
  await server.start(FAST, { ready: true });
});
after(async () => {
  await server?.close();
});

function props(overrides: Record<string, unknown> = {}) {
  return {
    serverId: "i-prov0", host: server.ip, sshPort: 22, username: "root", privateKey: testSshKey().privateKey,
    expectedHostKey: "", apiPort: 6443, dataDir: "/var/lib/rancher/k3s", nodeName: server.name,
    timeoutSeconds: 30, intervalSeconds: 2, expectedToken: "", revision: "r1", ...overrides,
  };
}

async function assertVerified(r: HostResult, label: string): Promise<void> {
  assert.equal(r.error, undefined, `${label}: ${r.error}`);
  const outs = r.result.outs;
  const onDisk = await server.sh(`cat ${TOKEN_FILE}`);
  assert.equal(outs.token, onDisk, "the token returned is the one the server wrote");
  assert.equal(outs.caHash, onDisk.slice(3, 67));
  assert.deepEqual(outs.report.steps.map((s: { ok: boolean }) => s.ok), [true, true, true, true, true, true, true]);
  const stored = JSON.stringify({ ...outs, token: undefined, agentToken: undefined });
  assert.ok(!stored.includes(onDisk.slice(onDisk.lastIndexOf(":") + 1)), "no token in any other output");
  console.log(`${label}: verified in ${r.ms} ms`);
}

for (const [label, serialize] of [["tsx", serializeUnderTsx], ["tsc", async () => serializeFromTsc()]] as const) {
  test(`serialized provider (${label}) runs the node-side check: create, update as the sudo user, a wrong expected token`, async () => {
    const { text } = await serialize();
    assert.ok(text.includes("k3s-cluster-check"), "the serialized provider carries the node-side check's text");
    const wrong = "K10" + "0".repeat(64) + "::server:" + "f".repeat(32);
    const [created, updated, refused] = runInProviderHost(text, [
      ["create", props()],
      ["update", "i-prov0-token", props(), props({ username: "ubuntu", revision: "r2" })],
      ["create", props({ expectedToken: wrong })],
    ], 120_000);
    await assertVerified(created, `${label} create`);
    await assertVerified(updated, `${label} update`);
    assert.ok(refused.error, "a server that did not take the expected token fails");
    assert.match(refused.error, /step 6 \(Authentication\) failed after 1 attempt\(s\)/);
    const real = await server.sh(`cat ${TOKEN_FILE}`);
    for (const secret of [wrong, real, real.slice(real.lastIndexOf(":") + 1), "f".repeat(32)]) {
      assert.ok(!refused.error.includes(secret), "the error holds no token");
    }
    assert.deepEqual(await server.checkLeftovers(), []);
  });
}
