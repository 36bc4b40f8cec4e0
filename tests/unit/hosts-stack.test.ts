// The program (index.ts) on a `k3s-cluster:hosts` stack under Pulumi mocks: machines that already exist are
// only reached over SSH. A file of its own, so "no AWS or TLS resource, no invoke, no AWS code loaded" holds
// for the whole process, not only for the resources of one test.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Recorder, plain, settle } from "../helpers/recorder-orchestration";
import { K3S_YAML } from "../helpers/k3s-yaml";

const SERVER_TOKEN_TYPE = "pulumi-nodejs:dynamic/k3s:ServerToken";
const REMOTE_COMMAND_TYPE = "pulumi-nodejs:dynamic/k3s:RemoteCommand";
const TOKEN = "K10" + "ed9e".repeat(16) + "::server:" + "0dd5".repeat(8);
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZWRnZS1ob3N0cy1rZXk=edge-hosts-key\n-----END OPENSSH PRIVATE KEY-----\n";
const keyOf = (name: string) => "SHA256:" + createHash("sha256").update(name).digest("base64").replace(/=+$/, "");
const GIVEN_KEY = keyOf("edge-s0's real host key");

// Roles interleaved on purpose: servers are the hosts with role server, in list order, wherever they stand.
const HOSTS = [
  { name: "a0", address: "203.0.113.20", role: "agent", sshUser: "debian", sshPort: 2222 },
  { name: "s0", address: "203.0.113.10", privateAddress: "10.0.0.10", role: "server", hostKey: GIVEN_KEY },
  { name: "s1", address: "203.0.113.11", role: "server" },
  { name: "a1", address: "203.0.113.21", privateAddress: "10.0.0.21", role: "agent", sshUser: "root" },
  { name: "s2", address: "s2.edge.example.net", privateAddress: "10.0.0.12", role: "server", sshPort: 2202 },
];
const STEPS = ["cloud-init", "puppet-agent", "modules", "puppet-apply", "token-file", "start"];

const invokes: string[] = [];
pulumi.runtime.setMocks({
  newResource(args) {
    const state: Record<string, unknown> = { ...args.inputs };
    if (args.type === SERVER_TOKEN_TYPE) {
      const report = { ok: true, serverUrl: `https://${args.inputs.host}:6443`, caHash: "cd".repeat(32), hostKeyFingerprint: args.inputs.expectedHostKey, steps: [] };
      Object.assign(state, { token: TOKEN, agentToken: TOKEN, caHash: report.caHash, serverUrl: report.serverUrl, hostKeyFingerprint: report.hostKeyFingerprint, report });
    }
    if (args.type === REMOTE_COMMAND_TYPE) {
      // As the provider: the key the node showed (keyOf(step name)), stdout only for a step that captures it.
      // The whole-cluster check reads back the module's JSON verdict, the kubeconfig read the file. One agent's status
      // is not Ready here only to show that the output carries each node's status as the check printed it.
      const verdict = () => JSON.stringify({ ok: false, nodes: JSON.parse(args.inputs.rerunOn[0]).map((n: { name: string }) =>
        ({ ...n, status: n.name === "a1" ? "NotReady" : "Ready", listed: 1 })) });
      const stdout = !args.inputs.captureStdout ? "" : args.name.endsWith("-cluster-check") ? verdict() : K3S_YAML;
      Object.assign(state, { hostKey: plain(args.inputs.connection)?.hostKey || keyOf(args.name), stdout: pulumi.secret(stdout) });
    }
    return { id: `${args.name}-id`, state };
  },
  call(args) {
    invokes.push(args.token);
    return {};
  },
}, "k3s-cluster", "hosts", false);

const recorder = new Recorder();
recorder.install();

pulumi.runtime.setAllConfig({
  "k3s-cluster:clusterName": "edge",
  "k3s-cluster:sshUser": "admin",
  "k3s-cluster:sshPrivateKey": KEY,
  "k3s-cluster:hosts": JSON.stringify(HOSTS),
  "k3s-cluster:drainTimeout": "0",
  "k3s-cluster:maxUnavailableAgents": "2",
  "k3s-cluster:tokenRotation": "2026-11",
}, ["k3s-cluster:sshPrivateKey"]);

// The program itself, as `pulumi up` runs it: config → hosts topology → join flow → exports.
const program: typeof import("../../index") = require("../../index");

const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply((v) => { resolve(v); return v; }));
let outputs: Record<string, unknown>;
before(async () => {
  outputs = {
    serverPublicIps: await value(program.serverPublicIps),
    serverPrivateIps: await value(program.serverPrivateIps),
    agentPrivateIps: await value(program.agentPrivateIps),
    serverUrl: await value(program.serverUrl),
    apiEndpoint: await value(program.apiEndpoint),
    token: await value(program.token),
    nodes: await value(program.nodes),
    nodesSecret: await (program.nodes as any).isSecret,
  };
  await settle(recorder);
});

const input = (name: string, key: string) => plain(recorder.find(name).rawInputs[key]);

test("a hosts stack registers no AWS or TLS resource, calls no invoke and loads no AWS or TLS code", () => {
  const types = [...new Set(recorder.registrations.map((r) => r.type))];
  assert.ok(types.includes(REMOTE_COMMAND_TYPE) && types.includes(SERVER_TOKEN_TYPE), types.join(" "));
  // Components and this program's own dynamic resources only: nothing needs a provider plugin.
  assert.deepEqual(types.filter((t) => !/^(k3s:index:|pulumi-nodejs:dynamic\/k3s:)/.test(t)), []);
  assert.deepEqual(invokes, [], "no image, zone or VPC lookup");
  const loaded = Object.keys(require.cache);
  assert.ok(loaded.some((f) => f.endsWith(`${path.sep}hosts-topology.ts`)), "the module list is real: it holds the hosts topology");
  for (const pkg of ["@pulumi/aws", "@pulumi/tls"]) {
    assert.deepEqual(loaded.filter((f) => f.includes(`${path.sep}node_modules${path.sep}${pkg.replace("/", path.sep)}${path.sep}`)), [], `${pkg} is never loaded`);
  }
  assert.ok(!loaded.some((f) => f.endsWith(`${path.sep}ec2-topology.ts`)));
});

test("resources are named <cluster>-<host>-<step>; the first server, which generates the token, has no token file", () => {
  const names = recorder.registrations.map((r) => r.name);
  assert.deepEqual(names.filter((n) => n !== "edge" && !n.startsWith("edge-")), [], "every resource is named after the cluster");
  const expected = [
    ...HOSTS.flatMap((h) => [`edge-${h.name}-bootstrap`, ...STEPS.map((s) => `edge-${h.name}-${s}`)]),
    ...HOSTS.filter((h) => h.role === "server").map((h) => `edge-${h.name}-token`),
  ].filter((n) => n !== "edge-s0-token-file");
  for (const n of expected) assert.ok(names.includes(n), `${n} registered`);
  assert.ok(!names.includes("edge-s0-token-file"));
  assert.equal(names.filter((n) => n.startsWith("edge-a0-") && n.endsWith("-token")).length, 0, "agents are not verified as servers");
  // The Kubernetes node name is the host's name, not the resource name.
  assert.match(input("edge-s1-puppet-apply", "stdin"), /node_name +=> 's1',/);
  assert.equal(input("edge-s1-token", "nodeName"), "s1");
});

test("each host is reached at its address with its own SSH user and port (the cluster's user otherwise), root through sudo", () => {
  const want: Record<string, [string, number, string]> = {
    a0: ["203.0.113.20", 2222, "debian"], s0: ["203.0.113.10", 22, "admin"], s1: ["203.0.113.11", 22, "admin"],
    a1: ["203.0.113.21", 22, "root"], s2: ["s2.edge.example.net", 2202, "admin"],
  };
  for (const [host, [address, port, user]] of Object.entries(want)) {
    for (const step of STEPS) {
      if (step === "token-file" && host === "s0") continue;
      const conn = input(`edge-${host}-${step}`, "connection");
      assert.deepEqual([conn.host, conn.port, conn.user, conn.node], [address, port, user, `edge-${host}`], `edge-${host}-${step}`);
      assert.equal(conn.privateKey, KEY);
    }
    const sudo = user === "root" ? "" : "sudo -n ";
    assert.ok(input(`edge-${host}-puppet-apply`, "create").startsWith(`timeout -k 10 1200 ${sudo}bash -c `), `${host} as ${user}`);
    if (host.startsWith("s")) {
      const v = plain(recorder.find(`edge-${host}-token`).rawInputs);
      assert.deepEqual([v.host, v.sshPort, v.username, v.serverId], [address, port, user, `${address}:${port}`]);
    }
  }
  const kubeconfig = input("edge-kubeconfig", "connection");
  assert.deepEqual([kubeconfig.host, kubeconfig.port, kubeconfig.user], ["203.0.113.10", 22, "admin"], "read from the first server");
  assert.deepEqual(recorder.plaintextOccurrences(KEY), [], "the login key reaches every step only as a secret");
  assert.deepEqual(recorder.plaintextOccurrences(TOKEN), []);
});

test("a host's configured hostKey is insisted on from the first contact; the others pin what their cloud-init step recorded", () => {
  for (const step of STEPS.filter((s) => s !== "token-file")) {
    assert.equal(input(`edge-s0-${step}`, "connection").hostKey, GIVEN_KEY, `edge-s0-${step}`);
  }
  assert.equal(input("edge-s0-token", "expectedHostKey"), GIVEN_KEY);
  assert.equal(input("edge-kubeconfig", "connection").hostKey, GIVEN_KEY);
  for (const host of ["a0", "s1", "a1", "s2"]) {
    assert.equal(input(`edge-${host}-cloud-init`, "connection").hostKey, "", `edge-${host}: first contact`);
    for (const step of STEPS.slice(1)) {
      assert.equal(input(`edge-${host}-${step}`, "connection").hostKey, keyOf(`edge-${host}-cloud-init`), `edge-${host}-${step}`);
    }
    if (host.startsWith("s")) assert.equal(input(`edge-${host}-token`, "expectedHostKey"), keyOf(`edge-${host}-cloud-init`));
  }
});

test("outputs come from the hosts list: public and private addresses (private falls back to the address), server URL, API endpoint", () => {
  assert.deepEqual(outputs.serverPublicIps, ["203.0.113.10", "203.0.113.11", "s2.edge.example.net"]);
  assert.deepEqual(outputs.serverPrivateIps, ["10.0.0.10", "203.0.113.11", "10.0.0.12"]);
  assert.deepEqual(outputs.agentPrivateIps, ["203.0.113.20", "10.0.0.21"]);
  assert.equal(outputs.serverUrl, "https://10.0.0.10:6443");
  assert.equal(outputs.apiEndpoint, "https://203.0.113.10:6443");
  assert.equal(outputs.token, TOKEN);
  // Joining nodes go to the first server's private address; its public one is in every server's certificate.
  assert.match(input("edge-a0-puppet-apply", "stdin"), /server_url +=> 'https:\/\/10\.0\.0\.10:6443',/);
  assert.match(input("edge-s2-puppet-apply", "stdin"), /server_url +=> 'https:\/\/10\.0\.0\.10:6443',/);
  assert.match(input("edge-s2-puppet-apply", "stdin"), /tls_san +=> \['203\.0\.113\.10', 's2\.edge\.example\.net'\],/);
});

test("the nodes output is the whole-cluster check's verdict per host (name, role, status), in the hosts' roles, not secret", () => {
  assert.deepEqual(outputs.nodes, [
    { name: "s0", role: "server", status: "Ready" }, { name: "s1", role: "server", status: "Ready" }, { name: "s2", role: "server", status: "Ready" },
    { name: "a0", role: "agent", status: "Ready" }, { name: "a1", role: "agent", status: "NotReady" },
  ]);
  assert.equal(outputs.nodesSecret, false);
  assert.match(input("edge-cluster-check", "create"), /--expect '\\''s0=server'\\'' --expect '\\''s1=server'\\'' --expect '\\''s2=server'\\'' --expect '\\''a0=agent'\\'' --expect '\\''a1=agent'\\''/);
});

test("day two on hosts: memberships, rotation and rolling run on s0 as it is reached; the policy names the hosts setting", () => {
  const onS0 = (node: string) => ({ host: "203.0.113.10", port: 22, user: "admin", privateKey: KEY, hostKey: GIVEN_KEY, dialTimeout: 300, node });
  for (const h of HOSTS) {
    assert.deepEqual(input(`edge-${h.name}-member`, "connection"), onS0(`s0 (membership of ${h.name})`), h.name);
    assert.match(input(`edge-${h.name}-member`, "create"), new RegExp(`^timeout -k 10 \\d+ sudo -n bash -c .*node='\\\\''${h.name}'\\\\''.*role='\\\\''${h.role}'\\\\''`, "s"));
    // drainTimeout 0: the Node is deleted without cordon or drain.
    assert.doesNotMatch(input(`edge-${h.name}-member`, "delete"), /kubectl (cordon|drain)/);
    assert.match(input(`edge-${h.name}-member`, "delete"), /kubectl delete node "\$node"/);
  }
  for (const a of ["a0", "a1"]) {
    const around = input(`edge-${a}-start`, "around");
    assert.deepEqual([around.connection, around.group, around.limit], [onS0(`s0 (rolling ${a})`), "edge agents", 2]);
    assert.doesNotMatch(around.before, /kubectl (cordon|drain)/, "drainTimeout 0: nothing drained before an upgrade either");
  }
  assert.deepEqual(input("edge-token-rotation", "connection"), onS0("s0"), "messages name the host as the hosts list does");
  assert.deepEqual(input("edge-token-rotation", "rerunOn"), ["2026-11"]);
  const policy = plain(recorder.find("edge-policy").rawInputs);
  assert.deepEqual([policy.serversKey, policy.servers], ["hosts", ["s0", "s1", "s2"]], "a refusal names k3s-cluster:hosts");
});
