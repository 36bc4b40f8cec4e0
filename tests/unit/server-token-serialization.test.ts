// The ServerToken provider survives Pulumi's closure serialization — from the test transpiler (tsx) and from
// `tsc` output, as production may run either — and works when loaded back in a fresh Node process the way
// the engine's dynamic-provider host loads it. check/diff semantics are asserted on the loaded text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HostResult, runInProviderHost, serializeFromTsc, serializeUnderTsx } from "../helpers/serialize-provider";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const TOKEN = "K10" + "7e57".repeat(16) + "::server:" + "feedface".repeat(4);
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";

const inputs = {
  serverId: "i-0abc", host: "127.0.0.1", sshPort: 1, username: "root", privateKey: PRIVATE_KEY, expectedHostKey: "",
  apiPort: 6443, dataDir: "/var/lib/rancher/k3s", nodeName: "demo-server-0", timeoutSeconds: 30, intervalSeconds: 1,
  expectedToken: TOKEN, revision: "r1",
};
const olds = { ...inputs, token: TOKEN, agentToken: TOKEN, caHash: "7e57".repeat(16) };

/** What the engine would ask of the provider across a preview and an update. */
const calls = [
  ["check", {}, inputs],
  ["check", {}, { ...inputs, timeoutSeconds: 20, intervalSeconds: 0, host: "" }],
  ["check", {}, { ...inputs, host: UNKNOWN }],
  ["diff", "i-0abc-token", olds, inputs],
  ["diff", "i-0abc-token", olds, { ...inputs, serverId: "i-0def" }],
  ["diff", "i-0abc-token", olds, { ...inputs, serverId: UNKNOWN }],
  ["diff", "i-0abc-token", olds, { ...inputs, host: "127.0.0.2" }],
  ["diff", "i-0abc-token", olds, { ...inputs, revision: UNKNOWN }],
  ["diff", "i-0abc-token", olds, { ...inputs, expectedToken: TOKEN + "x" }],
  ["diff", "i-0abc-token", olds, { ...inputs, timeoutSeconds: 600, intervalSeconds: 10 }],
  // Nothing listens on port 1: the verification must fail at its first step, fast, without echoing the token.
  ["create", { ...inputs, timeoutSeconds: 30 }],
];

function runHost(text: string): HostResult[] {
  return runInProviderHost(text, calls, 60_000);
}

function assertBehaviour(results: HostResult[]) {
  const [ok, bad, unknownHost, same, newServer, unknownServer, newHost, unknownRevision, newToken, newTimeout, create] = results as any[];
  assert.deepEqual(ok.result.failures, []);
  assert.deepEqual(ok.result.inputs, inputs);
  const reasons = bad.result.failures.map((f: any) => f.reason).join("\n");
  assert.match(reasons, /timeoutSeconds must be a whole number from 30 to 600 \(got 20\)/);
  assert.match(reasons, /intervalSeconds must be above 0/);
  assert.match(reasons, /host must be a non-empty string/);
  assert.deepEqual(unknownHost.result.failures, [], "preview: an unknown host is not an error");
  assert.equal(same.result.changes, false);
  assert.deepEqual(newServer.result.replaces, ["serverId"], "a replaced server gets a new verification");
  assert.deepEqual(unknownServer.result.replaces, ["serverId"]);
  assert.equal(newHost.result.changes, true);
  assert.equal(newHost.result.replaces, undefined, "a moved server is verified again, in place");
  assert.equal(unknownRevision.result.changes, true, "a re-applied bootstrap means verify again");
  assert.equal(newToken.result.changes, true);
  assert.equal(newTimeout.result.changes, false, "tuning the deadline does not re-verify");
  assert.ok(create.error, "create against a closed port fails");
  assert.match(create.error, /step 1 \(/, `the error names the failed step: ${create.error}`);
  assert.match(create.error, /127\.0\.0\.1/);
  assert.ok(!create.error.includes(TOKEN) && !create.error.includes("feedface"), "the error never holds the token");
  assert.ok(create.ms < 45_000, `create gave up within its 30 s deadline (${create.ms} ms)`);
}

function assertSerializedText(text: string) {
  assert.match(text, /^exports\.handler = /);
  assert.doesNotMatch(text, /@pulumi\/aws/, "no AWS SDK captured");
  assert.doesNotMatch(text, /BEGIN [A-Z ]*PRIVATE KEY/, "no key captured");
  assert.ok(text.length < 512 * 1024, `serialized provider is ${text.length} bytes`);
}

test("serialized under tsx: loads in a fresh process and behaves (check, diff, create failing at step 1)", async () => {
  const sf = await serializeUnderTsx();
  assert.equal(sf.containsSecrets, false);
  assertSerializedText(sf.text);
  console.log(`serialized provider (tsx): ${sf.text.length} bytes`);
  assertBehaviour(runHost(sf.text));
});

test("serialized from tsc output: loads in a fresh process and behaves the same", () => {
  const sf = serializeFromTsc();
  assert.equal(sf.containsSecrets, false);
  assertSerializedText(sf.text);
  console.log(`serialized provider (tsc): ${sf.text.length} bytes`);
  assertBehaviour(runHost(sf.text));
});
