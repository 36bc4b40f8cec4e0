// The join flow under Pulumi mocks: gating order, secrecy of every input, and the outputs.
// The mock verification returns recognisable tokens; no registered input may hold them outside a secret.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Recorder, Registration, settle } from "../helpers/recorder-orchestration";
import { K3S_YAML } from "../helpers/k3s-yaml";

const TOKEN = "K10" + "7e57".repeat(16) + "::server:" + "feedface".repeat(4);
const AGENT_TOKEN = "K10" + "7e57".repeat(16) + "::node:" + "a9e47a9e".repeat(4);
const USER_TOKEN = "user-chosen-" + "c0ffee".repeat(4);
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtest-private-key\n-----END OPENSSH PRIVATE KEY-----\n";
const SERVER_TOKEN_TYPE = "pulumi-nodejs:dynamic/k3s:ServerToken";

pulumi.runtime.setMocks({
  newResource(args) {
    const id = `${args.name}-id`;
    if (args.type === SERVER_TOKEN_TYPE) {
      return { id, state: { ...args.inputs, token: TOKEN, agentToken: AGENT_TOKEN, caHash: "7e57".repeat(16),
        serverUrl: `https://${args.inputs.host}:6443`, hostKeyFingerprint: "SHA256:mock",
        report: { ok: true, serverUrl: `https://${args.inputs.host}:6443`, caHash: "7e57".repeat(16), hostKeyFingerprint: "SHA256:mock", steps: [] } } };
    }
    if (args.type === "command:remote:Command") {
      return { id, state: { ...args.inputs, stdout: args.name.endsWith("kubeconfig") ? K3S_YAML : `Notice: Applied catalog for ${args.name}`, stderr: "" } };
    }
    if (args.type === "aws:ec2/instance:Instance") {
      const n = Number(/(\d+)$/.exec(args.name)?.[1] ?? 0) + (args.name.includes("agent") ? 100 : 10);
      return { id: `i-${args.name}`, state: { ...args.inputs, publicIp: `203.0.113.${n}`, privateIp: `10.0.1.${n}` } };
    }
    return { id, state: args.inputs };
  },
  call(args) {
    return args.inputs;
  },
}, "k3s-cluster", "test", false);

const recorder = new Recorder();
recorder.install();

// Imported after setMocks, as the program is under the engine.
const aws: typeof import("@pulumi/aws") = require("@pulumi/aws");
const { joinCluster }: typeof import("../../components/orchestration") = require("../../components/orchestration");

const modulesDir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-modules-"));
fs.mkdirSync(path.join(modulesDir, "k3s_cluster/manifests"), { recursive: true });
fs.writeFileSync(path.join(modulesDir, "k3s_cluster/manifests/init.pp"), "class k3s_cluster {}\n");

class Holder extends pulumi.ComponentResource {
  constructor(name: string) { super("test:index:Holder", name); }
}

function instance(name: string, parent: pulumi.Resource, dependsOn: pulumi.Resource[] = []) {
  const i = new aws.ec2.Instance(name, { ami: "ami-0123456789abcdef0", instanceType: "t3.small" }, { parent, dependsOn });
  return { name, id: i.id, sshHost: i.publicIp, privateIp: i.privateIp };
}

type Topology = { name: string; servers: number; agents: number; autoTokenSharing?: boolean; waitForToken?: boolean };
function deploy(t: Topology) {
  const parent = new Holder(t.name);
  const out = joinCluster(parent, {
    clusterName: t.name,
    servers: Array.from({ length: t.servers }, (_, i) => instance(`${t.name}-server-${i}`, parent)),
    createAgents: (dependsOn) => Array.from({ length: t.agents }, (_, i) => instance(`${t.name}-agent-${i}`, parent, dependsOn)),
    sshUser: "ubuntu",
    sshPrivateKey: pulumi.secret(PRIVATE_KEY),
    k3sVersion: "v1.34.3+k3s1",
    autoTokenSharing: t.autoTokenSharing ?? true,
    token: t.autoTokenSharing === false ? pulumi.secret(USER_TOKEN) : undefined,
    waitForToken: t.waitForToken ?? true,
    tokenTimeout: 300,
    pollInterval: 5,
    apiEndpoint: "198.51.100.77",
    modulesDir,
  });
  return out;
}

let ha: ReturnType<typeof deploy>;
before(async () => {
  ha = deploy({ name: "ha", servers: 3, agents: 2 });
  deploy({ name: "lazy", servers: 1, agents: 2, waitForToken: false });
  deploy({ name: "own", servers: 3, agents: 1, autoTokenSharing: false });
  deploy({ name: "own-lazy", servers: 1, agents: 1, autoTokenSharing: false, waitForToken: false });
  await settle(recorder);
});

const byUrn = () => new Map(recorder.registrations.map((r) => [r.urn, r]));
function dependsTransitively(from: Registration, on: Registration): boolean {
  const map = byUrn();
  const seen = new Set<string>();
  const stack = [...from.dependencies];
  while (stack.length) {
    const urn = stack.pop()!;
    if (urn === on.urn) return true;
    if (seen.has(urn)) continue;
    seen.add(urn);
    stack.push(...(map.get(urn)?.dependencies ?? []));
  }
  return false;
}
const ofCluster = (prefix: string) => recorder.registrations.filter((r) => r.name.startsWith(`${prefix}-`));
const ofNode = (node: string) => recorder.registrations.filter((r) => r.name.startsWith(`${node}-`) || r.name === node);

test("the verification resource is a ServerToken dynamic resource declaring its tokens as secret outputs", () => {
  const v = recorder.ofType(SERVER_TOKEN_TYPE);
  assert.equal(v.length, 3 + 1 + 3 + 1, "one verification per server");
  for (const r of v) {
    for (const key of ["token", "agentToken"]) assert.ok(r.additionalSecretOutputs.includes(key), `${r.name} declares ${key} secret`);
  }
});

test("every agent resource depends on the first server's verification (waitForToken on)", () => {
  const gate = recorder.find("ha-server-0-token");
  for (const agent of ["ha-agent-0", "ha-agent-1"]) {
    const instance = recorder.find(agent);
    assert.ok(instance.dependencies.includes(gate.urn), `${agent}'s instance directly depends on the verification`);
    const resources = ofNode(agent);
    assert.ok(resources.length >= 7, `${agent}: instance and bootstrap steps registered`);
    for (const r of resources) {
      if (r.type === "k3s:index:NodeBootstrap") continue;
      assert.ok(dependsTransitively(r, gate), `${r.name} must wait for ${gate.name}`);
    }
  }
});

test("each further server joins only after the previous server verified, with the first server's token", () => {
  for (const i of [1, 2]) {
    const previous = recorder.find(`ha-server-${i - 1}-token`);
    for (const step of ["token-file", "puppet-apply"]) {
      const r = recorder.find(`ha-server-${i}-${step}`);
      assert.ok(r.dependencies.includes(previous.urn), `ha-server-${i}-${step} depends on ${previous.name}`);
    }
    // The token file is fed from the first server's verification output.
    assert.ok(recorder.find(`ha-server-${i}-token-file`).dependencies.includes(recorder.find("ha-server-0-token").urn));
    // Each verification waits for its own server's puppet apply.
    assert.ok(recorder.find(`ha-server-${i}-token`).dependencies.includes(recorder.find(`ha-server-${i}-puppet-apply`).urn));
  }
  // The first server generates the token: no token file, cluster_init in its manifest.
  assert.throws(() => recorder.find("ha-server-0-token-file"));
  assert.ok(!recorder.find("ha-server-1-token-file").dependencies.includes(recorder.find("ha-server-2-token").urn));
});

test("the manifests: cluster_init only on the first server, token_file and server_url on joining nodes, no secret", () => {
  const stdin = (name: string) => recorder.find(name).rawInputs.stdin as string;
  const first = stdin("ha-server-0-puppet-apply");
  assert.match(first, /node_type +=> 'server'/);
  assert.match(first, /cluster_init +=> true/);
  assert.doesNotMatch(first, /token_file|server_url/);
  assert.match(first, /tls_san +=> \['198\.51\.100\.77', '203\.0\.113\.10'\]/);
  const second = stdin("ha-server-1-puppet-apply");
  assert.match(second, /cluster_init +=> false/);
  assert.match(second, /server_url +=> 'https:\/\/10\.0\.1\.10:6443'/);
  assert.match(second, /token_file +=> '\/etc\/rancher\/k3s\/cluster-token'/);
  const agent = stdin("ha-agent-0-puppet-apply");
  assert.match(agent, /node_type +=> 'agent'/);
  assert.match(agent, /server_url +=> 'https:\/\/10\.0\.1\.10:6443'/);
  assert.match(agent, /auto_token_sharing +=> false/);
});

test("no registered input of any resource holds a token or the SSH key in plaintext; they travel as secrets", () => {
  for (const secret of [TOKEN, AGENT_TOKEN, USER_TOKEN, PRIVATE_KEY]) {
    assert.deepEqual(recorder.plaintextOccurrences(secret), [], `plaintext occurrences of a secret`);
  }
  const secretHits = recorder.secretOccurrences(TOKEN);
  assert.ok(secretHits.some((w) => w.includes("ha-server-1-token-file.stdin")), "the server token reaches joining servers, as a secret");
  assert.ok(recorder.secretOccurrences(AGENT_TOKEN).some((w) => w.includes("ha-agent-0-token-file.stdin")), "agents get the agent token");
  assert.ok(recorder.secretOccurrences(PRIVATE_KEY).length > 0);
});

test("bootstrap commands: no secret in the command text, every one bounded by timeout, token steps log nothing", () => {
  const commands = recorder.ofType("command:remote:Command");
  assert.ok(commands.length > 20);
  for (const c of commands) {
    const create = c.rawInputs.create as string;
    assert.equal(typeof create, "string", `${c.name} has a plain command text`);
    assert.match(create, /^timeout -k 10 \d+ /, `${c.name} bounded by timeout`);
    for (const s of [TOKEN, AGENT_TOKEN, USER_TOKEN, "BEGIN OPENSSH"]) assert.ok(!create.includes(s), `${c.name}'s text holds no secret`);
    assert.equal(c.rawInputs.environment, undefined, `${c.name} sends no environment`);
    assert.equal(c.rawInputs.addPreviousOutputInEnv, false);
    if (/token-file$/.test(c.name)) assert.ok(c.additionalSecretOutputs.includes("stdin"), `${c.name} keeps its echoed stdin secret`);
    if (/token-file$|kubeconfig$/.test(c.name)) assert.equal(c.rawInputs.logging, "none", `${c.name} logs nothing`);
    else assert.equal(c.rawInputs.logging, "stdoutAndStderr", `${c.name} streams its progress`);
    const raw = c.rawInputs.connection as any;
    const conn = raw.value ?? raw; // the connection may arrive wrapped as a whole secret
    assert.equal(conn.dialErrorLimit, 60, `${c.name}: dial limit sized for a fresh instance`);
    assert.equal(conn.perDialTimeout, 30);
    assert.equal(conn.user, "ubuntu");
  }
  assert.ok(recorder.find("ha-kubeconfig").additionalSecretOutputs.includes("stdout"), "the kubeconfig text is a secret output");
  assert.match(recorder.find("ha-server-0-puppet-apply").rawInputs.create as string, /^timeout -k 10 1200 sudo -n bash -c /);
});

test("outputs: token, agentToken and kubeconfig are secrets; the kubeconfig points at apiEndpoint, named after the cluster", async () => {
  const isSecret = (o: pulumi.Output<unknown>) => (o as any).isSecret as Promise<boolean>;
  const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply((v) => { resolve(v); return v; }));
  assert.equal(await isSecret(ha.token), true);
  assert.equal(await isSecret(ha.agentToken), true);
  assert.equal(await isSecret(ha.kubeconfig), true);
  assert.equal(await value(ha.token), TOKEN);
  const kubeconfig = await value(ha.kubeconfig);
  assert.match(kubeconfig, /server: https:\/\/198\.51\.100\.77:6443/);
  assert.match(kubeconfig, /current-context: ha/);
  assert.doesNotMatch(kubeconfig, /default/);
  const report = await value(ha.verification);
  assert.equal(report.ok, true);
  assert.equal((report as any).token, undefined);
});

test("waitForToken off: agent instances are not held back, their join still waits for the verified token", () => {
  const gate = recorder.find("lazy-server-0-token");
  const instance = recorder.find("lazy-agent-0");
  assert.ok(!dependsTransitively(instance, gate), "the agent instance is created alongside the server");
  assert.ok(!dependsTransitively(recorder.find("lazy-agent-0-puppet-agent"), gate), "its preparation runs in parallel");
  assert.ok(recorder.find("lazy-agent-0-token-file").dependencies.includes(gate.urn), "the token still comes only from the verification");
  assert.ok(dependsTransitively(recorder.find("lazy-agent-0-puppet-apply"), gate));
});

test("autoTokenSharing off: the user's token is written on every node and the verification expects it", () => {
  for (const node of ["own-server-0", "own-server-1", "own-server-2", "own-agent-0"]) {
    const tf = recorder.find(`${node}-token-file`);
    assert.ok(recorder.secretOccurrences(USER_TOKEN).some((w) => w.includes(`${node}-token-file.stdin`)), `${node} gets the user token`);
    assert.equal(tf.rawInputs.logging, "none");
    assert.match(recorder.find(`${node}-puppet-apply`).rawInputs.stdin as string, /token_file/);
  }
  const v = recorder.find("own-server-0-token");
  assert.ok(recorder.secretOccurrences(USER_TOKEN).some((w) => w.includes("own-server-0-token.expectedToken")), "verification proves the server took it");
  assert.ok(v.additionalSecretOutputs.includes("expectedToken"));
  // Both off: the agent joins without waiting for any verification.
  assert.ok(!dependsTransitively(recorder.find("own-lazy-agent-0-puppet-apply"), recorder.find("own-lazy-server-0-token")));
});

test("autoTokenSharing off without a token is refused before anything joins", () => {
  const parent = new Holder("notoken");
  assert.throws(() => joinCluster(parent, {
    clusterName: "notoken", servers: [instance("notoken-server-0", parent)], createAgents: () => [],
    sshUser: "ubuntu", sshPrivateKey: PRIVATE_KEY, k3sVersion: "v1.34.3+k3s1", autoTokenSharing: false,
    waitForToken: true, tokenTimeout: 300, pollInterval: 5, apiEndpoint: "198.51.100.77", modulesDir,
  }), /k3s-cluster:token is required when k3s-cluster:autoTokenSharing is false/);
});
