// The join flow under Pulumi mocks: gating order, secrecy of every input, host-key pinning, the day-two resources
// (membership, policy, whole-cluster check, token rotation, rolling agents) and the outputs.
// The mock verification returns recognisable tokens; no registered input may hold them outside a secret.
// Each mock RemoteCommand reports a host key of its own, so a step's pinned key shows which step it came from.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Recorder, Registration, plain, isSecretInput, settle } from "../helpers/recorder-orchestration";
import { K3S_YAML } from "../helpers/k3s-yaml";
import {
  DEFAULT_PATHS, STEP_TIMEOUTS, installModulesScript, installPuppetScript, puppetApplyScript, readKubeconfigScript,
  remoteCommand, removeModulesScript, removePuppetScript, removeTokenFileScript, rewriteServerTokenFileScript,
  startUnitScript, uninstallK3sScript, waitForCloudInitScript, writeTokenFileScript,
} from "../../components/bootstrap-scripts";
import { DIAL_TIMEOUT_SECONDS, directoryDigest } from "../../components/bootstrap";
import { verifyClusterScript } from "../../components/cluster-check";
import { clusterPolicyProvider } from "../../components/cluster-policy";
import {
  afterAgentUpdateScript, beforeAgentUpdateScript, removeNodeScript, waitNodeReadyScript,
} from "../../components/membership-scripts";
import { REMOTE_COMMAND_SECRET_OUTPUTS, REMOTE_COMMAND_TYPE } from "../../components/remote/command";
import { rotateTokenScript } from "../../components/token-rotation";
import type { NodeHandle } from "../../components/orchestration";

const TOKEN = "K10" + "7e57".repeat(16) + "::server:" + "feedface".repeat(4);
const AGENT_TOKEN = "K10" + "7e57".repeat(16) + "::node:" + "a9e47a9e".repeat(4);
const USER_TOKEN = "user-chosen-" + "c0ffee".repeat(4);
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtest-private-key\n-----END OPENSSH PRIVATE KEY-----\n";
const SERVER_TOKEN_TYPE = "pulumi-nodejs:dynamic/k3s:ServerToken";
const POLICY_TYPE = "pulumi-nodejs:dynamic/k3s:ClusterPolicy";

/** A well-formed `SHA256:…` fingerprint, distinct per resource name. */
const keyOf = (name: string) => "SHA256:" + createHash("sha256").update(name).digest("base64").replace(/=+$/, "");
const CA_HASH = "7e57".repeat(16);

/**
 * What the module's `k3s-cluster-verify-cluster --json` prints when every expected node (the check's first
 * rerunOn value) is a Ready member: more fields than the `nodes` output keeps.
 */
function verdictFor(expectedJson: string): string {
  const expected = JSON.parse(expectedJson) as { name: string; role: string }[];
  return JSON.stringify({
    ok: true, error: null, unexpected: [], seconds: 4, attempts: 3,
    nodes: expected.map((n) => ({ ...n, status: "Ready", listed: 1, ready: "True", listed_role: n.role })),
  }) + "\n";
}

pulumi.runtime.setMocks({
  newResource(args) {
    const id = `${args.name}-id`;
    if (args.type === SERVER_TOKEN_TYPE) {
      return { id, state: { ...args.inputs, token: TOKEN, agentToken: AGENT_TOKEN, caHash: CA_HASH,
        serverUrl: `https://${args.inputs.host}:6443`, hostKeyFingerprint: args.inputs.expectedHostKey,
        report: { ok: true, serverUrl: `https://${args.inputs.host}:6443`, caHash: CA_HASH, hostKeyFingerprint: args.inputs.expectedHostKey, steps: [] } } };
    }
    if (args.type === REMOTE_COMMAND_TYPE) {
      // As the provider: the key the node presented, and stdout only for a step that captures it — a secret
      // output, as the engine returns it (REMOTE_COMMAND_SECRET_OUTPUTS).
      const stdout = !args.inputs.captureStdout ? "" : args.name.endsWith("-cluster-check") ? verdictFor(args.inputs.rerunOn[0]) : K3S_YAML;
      return { id, state: { ...args.inputs, hostKey: keyOf(args.name), stdout: pulumi.secret(stdout) } };
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
const DIGEST = directoryDigest(modulesDir);

class Holder extends pulumi.ComponentResource {
  constructor(name: string) { super("test:index:Holder", name); }
}

function instance(name: string, parent: pulumi.Resource, dependsOn: pulumi.Resource[] = [], extra: Partial<NodeHandle> = {}): NodeHandle {
  const i = new aws.ec2.Instance(name, { ami: "ami-0123456789abcdef0", instanceType: "t3.small" }, { parent, dependsOn });
  return { name, resourceName: name, id: i.id, sshHost: i.publicIp, privateIp: i.privateIp, ...extra };
}

type Topology = {
  name: string; servers: number; agents: number; autoTokenSharing?: boolean; waitForToken?: boolean;
  /** Day-two settings; unset, the program's defaults apply. */
  drainTimeout?: number; maxUnavailableAgents?: number; tokenRotation?: string;
  /** Per-node settings a `hosts` entry can give (host key known in advance, own port and user). */
  extra?: (node: string) => Partial<NodeHandle>;
};
function deploy(t: Topology) {
  const parent = new Holder(t.name);
  const node = (role: string, i: number, dependsOn: pulumi.Resource[] = []) => {
    const name = `${t.name}-${role}-${i}`;
    return instance(name, parent, dependsOn, t.extra?.(name));
  };
  const out = joinCluster(parent, {
    clusterName: t.name,
    servers: Array.from({ length: t.servers }, (_, i) => node("server", i)),
    createAgents: (dependsOn) => Array.from({ length: t.agents }, (_, i) => node("agent", i, dependsOn)),
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
    drainTimeout: t.drainTimeout,
    maxUnavailableAgents: t.maxUnavailableAgents,
    tokenRotation: t.tokenRotation,
  });
  return out;
}

// Known in advance for every node of `known`: what `hostKey` in a hosts entry gives.
const PRESET = (node: string) => keyOf(`preset ${node}`);

let ha: ReturnType<typeof deploy>;
let lazy: ReturnType<typeof deploy>;
before(async () => {
  ha = deploy({ name: "ha", servers: 3, agents: 2, drainTimeout: 45, maxUnavailableAgents: 2, tokenRotation: "2026-11" });
  lazy = deploy({ name: "lazy", servers: 1, agents: 2, waitForToken: false });
  deploy({ name: "own", servers: 3, agents: 1, autoTokenSharing: false });
  deploy({ name: "own-lazy", servers: 1, agents: 1, autoTokenSharing: false, waitForToken: false });
  deploy({ name: "known", servers: 3, agents: 1, extra: (node) => ({
    hostKey: PRESET(node), sshPort: node.includes("agent") ? 2222 : 22, sshUser: node.includes("agent") ? "debian" : undefined,
  }) });
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
/** What a node applies: the module digest and its manifest (NodeBootstrap's revision). */
const revisionOf = (node: string) => createHash("sha256").update(`${DIGEST}\0${input(`${node}-puppet-apply`, "stdin")}`).digest("hex");
const ofNode = (node: string) => recorder.registrations.filter((r) => r.name.startsWith(`${node}-`) || r.name === node);
const input = (name: string, key: string) => plain(recorder.find(name).rawInputs[key]);
const nodesOf = (cluster: string, servers: number, agents: number) => [
  ...Array.from({ length: servers }, (_, i) => `${cluster}-server-${i}`),
  ...Array.from({ length: agents }, (_, i) => `${cluster}-agent-${i}`),
];
const STEPS_AFTER_CLOUD_INIT = ["puppet-agent", "modules", "puppet-apply", "token-file", "start"];
const BOOTSTRAP_STEPS = ["cloud-init", ...STEPS_AFTER_CLOUD_INIT];
/** The RemoteCommands of the bootstrap and the kubeconfig read (other node-side resources are not this file's subject). */
const bootstrapCommands = () => recorder.ofType(REMOTE_COMMAND_TYPE)
  .filter((r) => [...BOOTSTRAP_STEPS, "kubeconfig"].some((s) => r.name.endsWith(`-${s}`)));

test("the verification resource is a ServerToken dynamic resource declaring its tokens as secret outputs", () => {
  const v = recorder.ofType(SERVER_TOKEN_TYPE);
  assert.equal(v.length, 3 + 1 + 3 + 1 + 3, "one verification per server");
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
    const names = resources.map((r) => r.name);
    for (const s of ["bootstrap", ...BOOTSTRAP_STEPS]) assert.ok(names.includes(`${agent}-${s}`), `${agent}-${s} registered`);
    for (const r of resources) {
      if (r.type === "k3s:index:NodeBootstrap") continue;
      assert.ok(dependsTransitively(r, gate), `${r.name} must wait for ${gate.name}`);
    }
  }
});

test("each further server joins only after the previous server verified, with the first server's token", () => {
  for (const i of [1, 2]) {
    const previous = recorder.find(`ha-server-${i - 1}-token`);
    for (const step of ["token-file", "start"]) {
      const r = recorder.find(`ha-server-${i}-${step}`);
      assert.ok(r.dependencies.includes(previous.urn), `ha-server-${i}-${step} depends on ${previous.name}`);
    }
    // The token file is fed from the first server's verification output.
    assert.ok(recorder.find(`ha-server-${i}-token-file`).dependencies.includes(recorder.find("ha-server-0-token").urn));
    // The start waits for the node's own preparation and token file; the verification waits for the start.
    for (const step of ["puppet-apply", "token-file"]) {
      assert.ok(recorder.find(`ha-server-${i}-start`).dependencies.includes(recorder.find(`ha-server-${i}-${step}`).urn), step);
    }
    assert.ok(recorder.find(`ha-server-${i}-token`).dependencies.includes(recorder.find(`ha-server-${i}-start`).urn));
    // The slow preparation (Puppet included) does not wait: only the join is serial.
    for (const step of ["cloud-init", "puppet-agent", "modules", "puppet-apply"]) {
      assert.ok(!dependsTransitively(recorder.find(`ha-server-${i}-${step}`), recorder.find("ha-server-0-token")), `ha-server-${i}-${step} runs at once`);
    }
  }
  // The first server generates the token: no token file, cluster_init in its manifest.
  assert.throws(() => recorder.find("ha-server-0-token-file"));
  assert.ok(!recorder.find("ha-server-1-token-file").dependencies.includes(recorder.find("ha-server-2-token").urn));
});

test("the manifests: cluster_init only on the first server, token_file and server_url on joining nodes, no secret", () => {
  const stdin = (name: string) => input(name, "stdin") as string;
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
  for (const m of [first, second, agent]) {
    assert.match(m, /start_service +=> false/, "Puppet prepares k3s; the start step starts it");
    for (const s of [TOKEN, AGENT_TOKEN, "BEGIN OPENSSH"]) assert.ok(!m.includes(s));
  }
});

test("no registered input of any resource holds a token or the SSH key in plaintext; they travel as secrets", () => {
  for (const secret of [TOKEN, AGENT_TOKEN, USER_TOKEN, PRIVATE_KEY]) {
    assert.deepEqual(recorder.plaintextOccurrences(secret), [], `plaintext occurrences of a secret`);
  }
  const secretHits = recorder.secretOccurrences(TOKEN);
  assert.ok(secretHits.some((w) => w.includes("ha-server-1-token-file.stdin")), "the server token reaches joining servers, as a secret");
  assert.ok(recorder.secretOccurrences(AGENT_TOKEN).some((w) => w.includes("ha-agent-0-token-file.stdin")), "agents get the agent token");
  assert.ok(recorder.secretOccurrences(PRIVATE_KEY).some((w) => w.includes("ha-agent-0-puppet-apply.connection")));
  // The provider's code travels with every RemoteCommand (`__provider`): none of it may be a secret.
  const provider = recorder.find("ha-server-0-cloud-init").rawInputs.__provider as string;
  assert.equal(typeof provider, "string");
  assert.match(provider, /exports\.handler/);
});

test("bootstrap steps: the scripts they run and undo, bounded by timeout, no secret in any text, token steps log nothing", () => {
  const commands = bootstrapCommands();
  // 6 steps a node, 5 on a first server that generates the token (all but own and own-lazy), a kubeconfig read a cluster.
  const steps = (servers: number, agents: number, ownToken = false) => 6 * (servers + agents) - (ownToken ? 0 : 1) + 1;
  assert.equal(commands.length, steps(3, 2) + steps(1, 2) + steps(3, 1, true) + steps(1, 1, true) + steps(3, 1));
  const as = (script: string, step: keyof typeof STEP_TIMEOUTS, asRoot = true) =>
    remoteCommand(script, { timeoutSeconds: STEP_TIMEOUTS[step], asRoot, sshUser: "ubuntu" });
  // What each step runs (and re-runs), and what its delete undoes: `pulumi destroy` gives the machine back clean.
  type Want = { create: string; update: string; delete: string; step: keyof typeof STEP_TIMEOUTS };
  const expected = (server: boolean): Record<string, Want> => ({
    "cloud-init": { create: as(waitForCloudInitScript(STEP_TIMEOUTS.cloudInit), "cloudInit", false), update: "", delete: "", step: "cloudInit" },
    "puppet-agent": { create: as(installPuppetScript(), "puppetAgent"), update: "", delete: as(removePuppetScript(), "puppetAgent"), step: "puppetAgent" },
    modules: { create: as(installModulesScript(DEFAULT_PATHS), "modules"), update: "", delete: as(removeModulesScript(DEFAULT_PATHS), "modules"), step: "modules" },
    "puppet-apply": { create: as(puppetApplyScript(DEFAULT_PATHS), "apply"), update: "", delete: as(uninstallK3sScript(DEFAULT_PATHS), "uninstall"), step: "apply" },
    // A rotated token: a server rewrites its file and restarts so that the old token stops working; an agent
    // only gets the file written again (create once more).
    "token-file": {
      create: as(writeTokenFileScript(DEFAULT_PATHS.tokenFile), "tokenFile"),
      update: server ? as(rewriteServerTokenFileScript(DEFAULT_PATHS.tokenFile), "tokenFile") : "",
      delete: as(removeTokenFileScript(DEFAULT_PATHS.tokenFile), "tokenFile"), step: "tokenFile",
    },
    // The join: a server's start is queued (its verification waits), an agent's waits tokenTimeout for its join.
    start: { create: as(startUnitScript(server ? "k3s" : "k3s-agent", server ? 0 : 300), "start"), update: "", delete: "", step: "start" },
    kubeconfig: { create: as(readKubeconfigScript(), "kubeconfig"), update: "", delete: "", step: "kubeconfig" },
  });
  for (const node of nodesOf("ha", 3, 2).concat("ha")) {
    for (const [step, want] of Object.entries(expected(node.includes("-server-")))) {
      if ((node === "ha") !== (step === "kubeconfig") || (node === "ha-server-0" && step === "token-file")) continue;
      const name = `${node}-${step}`;
      assert.equal(input(name, "create"), want.create, `${name} runs ${step}`);
      assert.equal(input(name, "update"), want.update, `${name}'s update`);
      assert.equal(input(name, "delete"), want.delete, `${name}'s delete`);
      assert.equal(input(name, "timeoutSeconds"), STEP_TIMEOUTS[want.step] + 30, `${name}: the local bound leaves the node-side one room`);
    }
  }
  assert.equal(input("own-server-0-token-file", "update"), as(rewriteServerTokenFileScript(DEFAULT_PATHS.tokenFile), "tokenFile"),
    "a first server given the user's token rewrites and restarts like the others");
  for (const c of commands) {
    const inputs = plain(c.rawInputs);
    assert.deepEqual(Object.keys(inputs).sort(), ["__provider", "archiveDigest", "archiveDir", "around", "captureStdout", "connection", "create",
      "delete", "logUrn", "logging", "rerunOn", "stdin", "timeoutSeconds", "triggers", "update"], `${c.name} sends no environment or other input`);
    // Only an agent's start is rolled (drained before and uncordoned after a re-run); see the rolling test.
    assert.equal(inputs.around === null, !/-agent-\d+-start$/.test(c.name), `${c.name}: around`);
    for (const text of [inputs.create, inputs.update, inputs.delete]) {
      if (text !== "") assert.match(text, /^timeout -k 10 \d+ /, `${c.name} bounded by timeout`);
      for (const s of [TOKEN, AGENT_TOKEN, USER_TOKEN, "BEGIN OPENSSH"]) assert.ok(!text.includes(s), `${c.name}'s text holds no secret`);
    }
    assert.deepEqual(c.additionalSecretOutputs, REMOTE_COMMAND_SECRET_OUTPUTS, `${c.name} keeps connection, stdin and stdout secret`);
    assert.ok(isSecretInput(c.rawInputs.connection), `${c.name}: the connection (with its key) is a secret as a whole`);
    if (/token-file$|kubeconfig$/.test(c.name)) assert.equal(inputs.logging, "none", `${c.name} logs nothing`);
    else assert.equal(inputs.logging, "stdoutAndStderr", `${c.name} streams its progress`);
    assert.equal(inputs.captureStdout, /kubeconfig$/.test(c.name), `${c.name}: only the kubeconfig read keeps its stdout`);
    assert.equal(inputs.connection.dialTimeout, DIAL_TIMEOUT_SECONDS, `${c.name}: dial timeout sized for a fresh instance`);
    assert.equal(inputs.connection.privateKey, PRIVATE_KEY);
    // The engine's URN of the step, whose type chain runs through every ancestor (the mock monitor keeps only the
    // parent's, so it is rebuilt here from the parent's URN): lines sent under another URN are not shown under the step.
    const step = Object.keys(expected(false)).find((s) => c.name.endsWith(`-${s}`))!;
    const parent = recorder.find(step === "kubeconfig" ? c.name.slice(0, -"-kubeconfig".length) : `${c.name.slice(0, -step.length - 1)}-bootstrap`);
    assert.equal(inputs.logUrn, `urn:pulumi:test::k3s-cluster::${parent.urn.split("::")[2]}$${REMOTE_COMMAND_TYPE}::${c.name}`, c.name);
    if (c.name.startsWith("known-")) continue;
    assert.equal(inputs.connection.user, "ubuntu");
    assert.equal(inputs.connection.port, 22);
  }
  // The module tree travels as an archive, and a changed module re-runs the install and the apply in place.
  for (const node of nodesOf("ha", 3, 2)) {
    assert.deepEqual([input(`${node}-modules`, "archiveDir"), input(`${node}-modules`, "archiveDigest"), input(`${node}-modules`, "stdin")], [modulesDir, DIGEST, ""]);
    assert.deepEqual(input(`${node}-puppet-apply`, "rerunOn"), [DIGEST]);
    assert.deepEqual(input(`${node}-puppet-apply`, "triggers"), [], "a replacement would uninstall k3s behind the new apply");
    assert.deepEqual(input(`${node}-start`, "rerunOn"), [revisionOf(node)], "a new manifest or module restarts the unit (an upgrade)");
    assert.equal(input(`${node}-cloud-init`, "connection").node, node);
  }
  assert.deepEqual(input("ha-kubeconfig", "rerunOn"), [CA_HASH], "a new first server (new CA) is read again");
  assert.match(input("ha-server-0-puppet-apply", "create"), /^timeout -k 10 1200 sudo -n bash -c /);
  assert.match(input("ha-server-0-cloud-init", "create"), /^timeout -k 10 900 bash -c /, "waiting for cloud-init needs no root");
});

test("every step after cloud-init, the verification and the kubeconfig read pin the host key cloud-init recorded", () => {
  for (const [cluster, servers, agents] of [["ha", 3, 2], ["lazy", 1, 2], ["own", 3, 1]] as const) {
    for (const node of nodesOf(cluster, servers, agents)) {
      const cloudInit = recorder.find(`${node}-cloud-init`);
      assert.equal(plain(cloudInit.rawInputs.connection).hostKey, "", `${node}: first contact trusts the key it is shown`);
      for (const step of STEPS_AFTER_CLOUD_INIT) {
        if (step === "token-file" && node === `${cluster}-server-0` && cluster !== "own") continue;
        const r = recorder.find(`${node}-${step}`);
        assert.equal(plain(r.rawInputs.connection).hostKey, keyOf(`${node}-cloud-init`), `${r.name} pins cloud-init's key`);
        assert.ok(r.dependencies.includes(cloudInit.urn), `${r.name} waits for the key to be recorded`);
      }
      if (node.includes("-server-")) {
        assert.equal(input(`${node}-token`, "expectedHostKey"), keyOf(`${node}-cloud-init`), `${node}'s verification pins it too`);
      }
    }
    assert.equal(input(`${cluster}-kubeconfig`, "connection").hostKey, keyOf(`${cluster}-server-0-cloud-init`), "the kubeconfig read too");
  }
});

test("a host key known in advance is insisted on from the first contact on; per-node SSH port and user are used everywhere", () => {
  for (const node of nodesOf("known", 3, 1)) {
    const agent = node.includes("agent");
    for (const step of ["cloud-init", ...STEPS_AFTER_CLOUD_INIT]) {
      if (step === "token-file" && node === "known-server-0") continue;
      const conn = input(`${node}-${step}`, "connection");
      assert.equal(conn.hostKey, PRESET(node), `${node}-${step} insists on the given key`);
      assert.deepEqual([conn.port, conn.user], agent ? [2222, "debian"] : [22, "ubuntu"], `${node}-${step}`);
      if (step === "puppet-apply") assert.match(input(`${node}-${step}`, "create"), /^timeout -k 10 1200 sudo -n bash -c /, "root through sudo for a non-root user");
    }
    if (!agent) {
      assert.equal(input(`${node}-token`, "expectedHostKey"), PRESET(node));
      assert.equal(input(`${node}-token`, "sshPort"), 22);
      assert.equal(input(`${node}-token`, "username"), "ubuntu");
    }
  }
  assert.equal(input("known-kubeconfig", "connection").hostKey, PRESET("known-server-0"));
});

test("each verification's revision follows what its server applied (module digest and manifest) and the rotation label", () => {
  const revisions = nodesOf("ha", 3, 0).map((node) => {
    const revision = input(`${node}-token`, "revision");
    assert.equal(revision, `${revisionOf(node)}:2026-11`, node);
    return revision;
  });
  assert.equal(new Set(revisions).size, 3, "each server has its own manifest, so its own revision");
  assert.equal(input("lazy-server-0-token", "revision"), `${revisionOf("lazy-server-0")}:`, "no tokenRotation: an empty label");
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
  for (const step of ["puppet-agent", "modules", "puppet-apply"]) {
    assert.ok(!dependsTransitively(recorder.find(`lazy-agent-0-${step}`), gate), `its preparation (${step}) runs in parallel`);
  }
  assert.ok(recorder.find("lazy-agent-0-token-file").dependencies.includes(gate.urn), "the token still comes only from the verification");
  assert.ok(dependsTransitively(recorder.find("lazy-agent-0-start"), gate));
});

test("autoTokenSharing off: the user's token is written on every node and the verification expects it", () => {
  for (const node of ["own-server-0", "own-server-1", "own-server-2", "own-agent-0"]) {
    const tf = recorder.find(`${node}-token-file`);
    assert.ok(recorder.secretOccurrences(USER_TOKEN).some((w) => w.includes(`${node}-token-file.stdin`)), `${node} gets the user token`);
    assert.equal(plain(tf.rawInputs.logging), "none");
    assert.match(input(`${node}-puppet-apply`, "stdin"), /token_file/);
  }
  const v = recorder.find("own-server-0-token");
  assert.ok(recorder.secretOccurrences(USER_TOKEN).some((w) => w.includes("own-server-0-token.expectedToken")), "verification proves the server took it");
  assert.ok(v.additionalSecretOutputs.includes("expectedToken"));
  // Both off: the agent joins without waiting for any verification.
  assert.ok(!dependsTransitively(recorder.find("own-lazy-agent-0-start"), recorder.find("own-lazy-server-0-token")));
});

test("autoTokenSharing off without a token is refused before anything joins", () => {
  const parent = new Holder("notoken");
  assert.throws(() => joinCluster(parent, {
    clusterName: "notoken", servers: [instance("notoken-server-0", parent)], createAgents: () => [],
    sshUser: "ubuntu", sshPrivateKey: PRIVATE_KEY, k3sVersion: "v1.34.3+k3s1", autoTokenSharing: false,
    waitForToken: true, tokenTimeout: 300, pollInterval: 5, apiEndpoint: "198.51.100.77", modulesDir,
  }), /k3s-cluster:token is required when k3s-cluster:autoTokenSharing is false/);
});

// ---- Day two: membership, policy, whole-cluster check, token rotation, rolling agents ----

/** The first server's connection as every day-two step on it must use: its address, login and pinned key. */
function onFirstServer(cluster: string, node: string, firstKey = keyOf(`${cluster}-server-0-cloud-init`)) {
  return { host: "203.0.113.10", port: 22, user: "ubuntu", privateKey: PRIVATE_KEY, hostKey: firstKey, dialTimeout: DIAL_TIMEOUT_SECONDS, node };
}
const onServer = (script: string, timeoutSeconds: number) => remoteCommand(script, { timeoutSeconds, asRoot: true, sshUser: "ubuntu" });

test("membership: one <node>-member per node, kept by the first server over its pinned key: wait Ready as its role, remove with the drain", () => {
  for (const [cluster, nServers, nAgents, drain] of [["ha", 3, 2, 45], ["lazy", 1, 2, 120], ["own", 3, 1, 120]] as const) {
    const members = recorder.ofType(REMOTE_COMMAND_TYPE).map((r) => r.name).filter((n) => new RegExp(`^${cluster}-(server|agent)-\\d+-member$`).test(n));
    assert.deepEqual(members, nodesOf(cluster, nServers, nAgents).map((n) => `${n}-member`), `${cluster}: servers in order, then agents`);
    for (const node of nodesOf(cluster, nServers, nAgents)) {
      const role = node.includes("-server-") ? "server" : "agent";
      const name = `${node}-member`;
      assert.deepEqual(input(name, "connection"), onFirstServer(cluster, `${cluster}-server-0 (membership of ${node})`), name);
      assert.equal(input(name, "create"), onServer(waitNodeReadyScript(node, role, 300), 310), `${name} waits for ${node} Ready as ${role}`);
      assert.equal(input(name, "delete"), onServer(removeNodeScript(node, drain), drain + STEP_TIMEOUTS.kubeconfig), `${name} drains within ${drain}s`);
      assert.equal(input(name, "update"), "", "an upgraded node is waited for again (create)");
      assert.deepEqual(input(name, "rerunOn"), [revisionOf(node)], "re-checked when the node applied something new");
      assert.equal(input(name, "timeoutSeconds"), Math.max(300, drain) + STEP_TIMEOUTS.kubeconfig + 30);
    }
  }
  // A host with its own port, user and known key is still watched from the first server, with the first server's key.
  assert.deepEqual(input("known-agent-0-member", "connection"),
    onFirstServer("known", "known-server-0 (membership of known-agent-0)", PRESET("known-server-0")));
});

test("membership: each member waits for its node's join (and a server's verification, the first server's); servers leave one at a time", () => {
  const urn = (name: string) => recorder.find(name).urn;
  for (const i of [0, 1, 2]) {
    const member = recorder.find(`ha-server-${i}-member`);
    for (const on of [`ha-server-${i}-start`, `ha-server-${i}-token`, "ha-server-0-token", ...(i > 0 ? [`ha-server-${i - 1}-member`] : [])]) {
      assert.ok(member.dependencies.includes(urn(on)), `${member.name} depends on ${on}`);
    }
    // Removed before the node's own steps undo themselves: the Node is drained and deleted before k3s is uninstalled.
    assert.ok(dependsTransitively(member, recorder.find(`ha-server-${i}-puppet-apply`)));
  }
  // The chain runs one way: a later server's removal goes first, and the first server's member waits for no other.
  assert.ok(!dependsTransitively(recorder.find("ha-server-1-member"), recorder.find("ha-server-2-member")));
  assert.ok(!recorder.registrations.filter((r) => r.name.endsWith("-member")).some((m) => recorder.find("ha-server-0-member").dependencies.includes(m.urn)));
  for (const i of [0, 1]) {
    const member = recorder.find(`ha-agent-${i}-member`);
    for (const on of [`ha-agent-${i}-start`, "ha-server-0-token"]) assert.ok(member.dependencies.includes(urn(on)), `${member.name} depends on ${on}`);
    assert.ok(!recorder.registrations.some((m) => m.name.endsWith("-member") && member.dependencies.includes(m.urn)), "agents leave independently");
  }
  assert.equal(ha.members.length, 5);
});

test("policy: <cluster>-policy holds the version and the server names; every node's first step waits for it", async () => {
  for (const [cluster, nServers, nAgents] of [["ha", 3, 2], ["lazy", 1, 2], ["own", 3, 1], ["known", 3, 1]] as const) {
    const policy = recorder.find(`${cluster}-policy`);
    assert.equal(policy.type, POLICY_TYPE);
    const inputs = plain(policy.rawInputs);
    assert.deepEqual({ k3sVersion: inputs.k3sVersion, serversKey: inputs.serversKey, servers: inputs.servers },
      { k3sVersion: "v1.34.3+k3s1", serversKey: "servers", servers: nodesOf(cluster, nServers, 0) });
    assert.deepEqual(policy.dependencies, [], "checked before anything else");
    for (const node of nodesOf(cluster, nServers, nAgents)) {
      assert.ok(recorder.find(`${node}-cloud-init`).dependencies.includes(policy.urn), `${node}-cloud-init depends on ${policy.name}`);
      for (const step of STEPS_AFTER_CLOUD_INIT) {
        if (step === "token-file" && node === `${cluster}-server-0` && cluster !== "own") continue;
        assert.ok(dependsTransitively(recorder.find(`${node}-${step}`), policy), `${node}-${step}: a refused change touches no node`);
      }
    }
  }
  // The check the engine runs at preview, given the registered inputs as the previous deployment's.
  const olds = plain(recorder.find("ha-policy").rawInputs);
  assert.deepEqual((await clusterPolicyProvider.check!(olds, { ...olds, k3sVersion: "v1.35.1+k3s1" })).failures, []);
  const refused = await clusterPolicyProvider.check!(olds, { ...olds, k3sVersion: "v1.34.2+k3s1", servers: ["ha-server-0"] });
  assert.deepEqual(refused.failures?.map((f) => f.reason), [
    "k3s-cluster:k3sVersion v1.34.2+k3s1 is older than the running v1.34.3+k3s1: a downgrade is refused (k3s does not support it; restore from an etcd snapshot instead)",
    "k3s-cluster:servers 3 → 1 servers would remove 2 of 3 etcd members in one update; at most 1 can leave at once and keep a majority (remove them over several updates)",
  ]);
});

test("whole-cluster check: the module's verify-cluster on the first server expects every node with its role, after every member", () => {
  const check = recorder.find("ha-cluster-check");
  const expected = [
    { name: "ha-server-0", role: "server" }, { name: "ha-server-1", role: "server" }, { name: "ha-server-2", role: "server" },
    { name: "ha-agent-0", role: "agent" }, { name: "ha-agent-1", role: "agent" },
  ] as const;
  assert.equal(input("ha-cluster-check", "create"), onServer(verifyClusterScript([...expected], 300), 330));
  assert.match(input("ha-cluster-check", "create"),
    /k3s-cluster-verify-cluster --expect '\\''ha-server-0=server'\\'' .* --expect '\\''ha-agent-1=agent'\\'' --timeout 300 --interval 1 --json/);
  assert.equal(input("ha-cluster-check", "captureStdout"), true, "its verdict is read back");
  assert.deepEqual(input("ha-cluster-check", "connection"), onFirstServer("ha", "ha-server-0 (whole-cluster check)"));
  assert.deepEqual(input("ha-cluster-check", "rerunOn"), [JSON.stringify(expected), ...nodesOf("ha", 3, 2).map(revisionOf)],
    "checked again when the node list or any node's applied revision changes");
  for (const node of nodesOf("ha", 3, 2)) {
    assert.ok(check.dependencies.includes(recorder.find(`${node}-member`).urn), `after ${node}-member`);
  }
  assert.deepEqual(JSON.parse(input("lazy-cluster-check", "rerunOn")[0]),
    [{ name: "lazy-server-0", role: "server" }, { name: "lazy-agent-0", role: "agent" }, { name: "lazy-agent-1", role: "agent" }]);
});

test("nodes output: the check's JSON verdict as name, role and status per node, not secret (the check's stdout is)", async () => {
  const isSecret = (o: pulumi.Output<unknown>) => (o as any).isSecret as Promise<boolean>;
  const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply((v) => { resolve(v); return v; }));
  assert.deepEqual(await value(ha.nodes), nodesOf("ha", 3, 2).map((name) => ({ name, role: name.includes("-server-") ? "server" : "agent", status: "Ready" })));
  assert.equal(await isSecret(ha.nodes), false, "node names and states are no secret");
  assert.equal((await value(lazy.nodes)).length, 3);
  assert.equal(await isSecret(ha.kubeconfig), true, "the mock returns captured stdout as a secret, as the engine does");
});

test("token rotation: <cluster>-token-rotation on the first server records the label, runs k3s token rotate when it changes", () => {
  for (const [cluster, label] of [["ha", "2026-11"], ["lazy", ""], ["known", ""]] as const) {
    const name = `${cluster}-token-rotation`;
    const firstKey = cluster === "known" ? PRESET("known-server-0") : keyOf(`${cluster}-server-0-cloud-init`);
    assert.deepEqual(input(name, "connection"), onFirstServer(cluster, `${cluster}-server-0`, firstKey));
    assert.equal(input(name, "create"), "echo token rotation label recorded", "a new cluster's token is fresh: nothing to rotate");
    assert.equal(input(name, "update"), onServer(rotateTokenScript(), 60));
    assert.deepEqual(input(name, "rerunOn"), [label]);
    assert.equal(input(name, "timeoutSeconds"), 90);
    const rotation = recorder.find(name);
    assert.ok(rotation.dependencies.includes(recorder.find(`${cluster}-server-0-start`).urn), "rotates a running server");
    assert.ok(recorder.find(`${cluster}-server-0-token`).dependencies.includes(rotation.urn), "the first server is verified after the rotation");
  }
  // Each further server is verified again after its token file (rewritten with the new token, k3s restarted).
  for (const i of [1, 2]) {
    assert.ok(recorder.find(`ha-server-${i}-token`).dependencies.includes(recorder.find(`ha-server-${i}-token-file`).urn));
  }
  // A user-supplied token is rotated by the user: no rotation step at all.
  assert.throws(() => recorder.find("own-token-rotation"));
  assert.throws(() => recorder.find("own-lazy-token-rotation"));
});

test("rolling agents: an agent's start is re-run through the first server — drained before, Ready at the release after — maxUnavailableAgents at a time", () => {
  for (const [cluster, nServers, nAgents, drain, limit] of [["ha", 3, 2, 45, 2], ["lazy", 1, 2, 120, 1]] as const) {
    // The wait for the servers to run the release: tokenTimeout for each of the most servers a cluster may
    // have, so that scaling servers out changes no agent's step.
    const wait = 300 * 7;
    for (const agent of nodesOf(cluster, 0, nAgents)) {
      const around = input(`${agent}-start`, "around");
      assert.deepEqual(around, {
        connection: onFirstServer(cluster, `${cluster}-server-0 (rolling ${agent})`),
        before: onServer(beforeAgentUpdateScript(agent, "v1.34.3+k3s1", wait, drain), wait + drain + 30),
        after: onServer(afterAgentUpdateScript(agent, "v1.34.3+k3s1", 300), wait + drain + 30),
        group: `${cluster} agents`,
        limit,
        // The provider waits for each as long as their node-side bound, and a little more.
        timeoutSeconds: wait + drain + 60,
      }, agent);
      for (const script of [around.before, around.after]) {
        assert.ok(script.includes(`node='\\''${agent}'\\''`) && script.includes(`release='\\''v1.34.3+k3s1'\\''`), "names the node and the release");
      }
      assert.ok(isSecretInput((recorder.find(`${agent}-start`).rawInputs.around as any).connection), "the via connection (its key) is a secret");
    }
    for (const server of nodesOf(cluster, nServers, 0)) assert.equal(input(`${server}-start`, "around"), null, `${server} restarts as it is verified`);
  }
  assert.deepEqual(input("known-agent-0-start", "around").connection, onFirstServer("known", "known-server-0 (rolling known-agent-0)", PRESET("known-server-0")),
    "drained from the first server as it is reached, whatever the agent's own port and user");
  assert.ok(REMOTE_COMMAND_SECRET_OUTPUTS.includes("around"));
});

test("rolling agents: the provider waits for before and after as long as their own node-side bound", () => {
  const bound = (text: string) => Number(/^timeout -k 10 (\d+) /.exec(text)![1]);
  for (const agent of ["ha-agent-0", "ha-agent-1"]) {
    const around = input(`${agent}-start`, "around");
    for (const script of [around.before, around.after]) {
      assert.ok(around.timeoutSeconds > bound(script), `${agent}: local bound ${around.timeoutSeconds} s vs node-side ${bound(script)} s`);
    }
  }
});
