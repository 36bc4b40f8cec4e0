// The program on EC2 under Pulumi mocks: topology, naming, parenting, security-group rules, host hardening, and
// how the node-side steps reach each instance. (A `hosts` stack has its own file: it must load no AWS code at all.)
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { K3S_YAML } from "../helpers/k3s-yaml";

const modulesDir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-modules-"));
fs.mkdirSync(path.join(modulesDir, "k3s_cluster/manifests"), { recursive: true });
fs.writeFileSync(path.join(modulesDir, "k3s_cluster/manifests/init.pp"), "class k3s_cluster {}\n");

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, any>;
}
const registered: Registered[] = [];
let amiLookups = 0;
const publicIps = new Map<string, string>();
const SERVER_TOKEN_TYPE = "pulumi-nodejs:dynamic/k3s:ServerToken";
const REMOTE_COMMAND_TYPE = "pulumi-nodejs:dynamic/k3s:RemoteCommand";
const BOOTSTRAP_STEP = /-(cloud-init|puppet-agent|modules|puppet-apply|token-file|start|kubeconfig)$/;
const hostKeyOf = (node: string) => "SHA256:" + createHash("sha256").update(node).digest("base64").replace(/=+$/, "");

pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      const state: Record<string, unknown> = { ...args.inputs };
      if (args.type === "tls:index/privateKey:PrivateKey") {
        state.publicKeyOpenssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGenerated generated";
        state.privateKeyOpenssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nGENERATEDKEY\n-----END OPENSSH PRIVATE KEY-----\n";
      }
      if (args.type === SERVER_TOKEN_TYPE) {
        const report = { ok: true, serverUrl: "https://10.0.0.1:6443", caHash: "ab".repeat(32), hostKeyFingerprint: "SHA256:mock", steps: [] };
        Object.assign(state, { token: "K10" + "ab".repeat(32) + "::server:" + "c".repeat(32), agentToken: "K10" + "ab".repeat(32) + "::node:" + "d".repeat(32), caHash: report.caHash, serverUrl: report.serverUrl, hostKeyFingerprint: report.hostKeyFingerprint, report });
      }
      if (args.type === REMOTE_COMMAND_TYPE) {
        // As the provider: the key the node showed (one per node), stdout only for a step that captures it.
        state.hostKey = hostKeyOf(args.name.replace(/-(cloud-init|puppet-agent|modules|puppet-apply|token-file|start)$/, ""));
        // The whole-cluster check reads back the module's JSON verdict, the kubeconfig read the file.
        state.stdout = !args.inputs.captureStdout ? "" : args.name.endsWith("-cluster-check")
          ? JSON.stringify({ ok: true, nodes: JSON.parse(args.inputs.rerunOn[0]).map((n: object) => ({ ...n, status: "Ready", listed: 1 })) })
          : K3S_YAML;
      }
      if (args.type === "aws:ec2/instance:Instance") {
        const n = registered.filter((r) => r.type === args.type).length;
        state.privateIp = `10.0.0.${n}`;
        state.publicIp = `203.0.113.${n}`;
        publicIps.set(args.name, state.publicIp as string);
      }
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      if (args.token === "aws:ec2/getAmi:getAmi") amiLookups++;
      if (args.token === "aws:ec2/getAmi:getAmi") return { id: "ami-0abc", architecture: args.inputs.filters[0].values[0].includes("arm64") ? "arm64" : "x86_64" };
      if (args.token === "aws:index/getAvailabilityZones:getAvailabilityZones") return { names: ["eu-west-1a", "eu-west-1b", "eu-west-1c"] };
      return {};
    },
  },
  "k3s-cluster",
  "test",
  false,
);

import { Recorder, plain, settle as registrationsSettled } from "../helpers/recorder-orchestration";
import { ClusterComponent } from "../../components/cluster";

const recorder = new Recorder();
recorder.install();
import { loadConfig } from "../../components/config";

const BASE = {
  "k3s-cluster:adminCidrs": '["203.0.113.0/24","198.51.100.7/32"]',
  "k3s-cluster:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user",
  "k3s-cluster:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
};

function settle<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply(resolve));
}

async function build(name: string, servers: number, agents: number, extra: Record<string, string> = {}) {
  const config = loadConfig({ ...BASE, "k3s-cluster:clusterName": name, "k3s-cluster:servers": String(servers), "k3s-cluster:agents": String(agents), ...extra });
  const cluster = new ClusterComponent(name, { config, modulesDir });
  const ips = await settle(pulumi.all([cluster.serverPrivateIps, cluster.agentPrivateIps, cluster.serverUrl, cluster.apiEndpoint]));
  return { cluster, ips, mine: registered.filter((r) => r.name.startsWith(`${name}-`)) };
}

describe("ClusterComponent under mocks", () => {
  for (const [servers, agents] of [[1, 0], [1, 3], [3, 5]]) {
    it(`topology ${servers}+${agents}: stable names, roles and outputs`, async () => {
      const name = `t${servers}x${agents}`;
      const { ips, mine } = await build(name, servers, agents);
      const instances = mine.filter((r) => r.type === "aws:ec2/instance:Instance");
      const expected = [
        ...Array.from({ length: servers }, (_, i) => `${name}-server-${i}`),
        ...Array.from({ length: agents }, (_, i) => `${name}-agent-${i}`),
      ];
      assert.deepEqual(instances.map((i) => i.name).sort(), expected.sort());
      for (const inst of instances) {
        const role = inst.name.includes("-server-") ? "server" : "agent";
        assert.equal(inst.inputs.tags["k3s:role"], role);
        assert.equal(inst.inputs.tags["k3s:cluster"], name);
        assert.equal(inst.inputs.tags.Name, inst.name);
        assert.equal(inst.inputs.metadataOptions.httpTokens, "required", "IMDSv2 only");
        assert.equal(inst.inputs.rootBlockDevice.encrypted, true);
        assert.equal(inst.inputs.rootBlockDevice.volumeType, "gp3");
        assert.equal(inst.inputs.userData, undefined, "no user data at all");
      }
      // Spread across the two subnets.
      const subnets = new Set(instances.map((i) => i.inputs.subnetId));
      assert.equal(subnets.size, Math.min(2, instances.length));
      assert.equal(ips[0].length, servers);
      assert.equal(ips[1].length, agents);
      assert.match(ips[2], /^https:\/\/10\.0\.0\.\d+:6443$/);
      assert.match(ips[3], /^https:\/\/203\.0\.113\.\d+:6443$/);
    });
  }

  it("looks the image up once per architecture, not once per node", async () => {
    const before = amiLookups;
    await build("amis", 3, 5);
    assert.equal(amiLookups - before, 1, "servers and agents share one x86_64 lookup");
  });

  it("opens exactly the ports k3s needs, one rule resource per rule", async () => {
    const { mine } = await build("sg", 1, 1);
    const rules = mine
      .filter((r) => r.type.startsWith("aws:vpc/securityGroup"))
      .map((r) => `${r.name.replace(/^sg-/, "")} ${r.inputs.ipProtocol} ${r.inputs.fromPort ?? "*"}-${r.inputs.toPort ?? "*"} ${r.inputs.cidrIpv4 ?? "sg"}`)
      .sort();
    assert.deepEqual(rules, [
      "agent-egress -1 *-* 0.0.0.0/0",
      "agent-kubelet-from-agents tcp 10250-10250 sg",
      "agent-kubelet-from-servers tcp 10250-10250 sg",
      "agent-ssh-admin-0 tcp 22-22 203.0.113.0/24",
      "agent-ssh-admin-1 tcp 22-22 198.51.100.7/32",
      "agent-vxlan-from-agents udp 8472-8472 sg",
      "agent-vxlan-from-servers udp 8472-8472 sg",
      "server-api-admin-0 tcp 6443-6443 203.0.113.0/24",
      "server-api-admin-1 tcp 6443-6443 198.51.100.7/32",
      "server-api-from-agents tcp 6443-6443 sg",
      "server-api-from-servers tcp 6443-6443 sg",
      "server-egress -1 *-* 0.0.0.0/0",
      "server-etcd-from-servers tcp 2379-2380 sg",
      "server-kubelet-from-agents tcp 10250-10250 sg",
      "server-kubelet-from-servers tcp 10250-10250 sg",
      "server-ssh-admin-0 tcp 22-22 203.0.113.0/24",
      "server-ssh-admin-1 tcp 22-22 198.51.100.7/32",
      "server-vxlan-from-agents udp 8472-8472 sg",
      "server-vxlan-from-servers udp 8472-8472 sg",
    ]);
    const groups = mine.filter((r) => r.type === "aws:ec2/securityGroup:SecurityGroup");
    assert.ok(groups.every((g) => g.inputs.ingress === undefined && g.inputs.egress === undefined), "no inline rules");
  });

  it("without a key pair in the config, one is generated and its private half reaches nodes only as a secret", async () => {
    const config = loadConfig({ "k3s-cluster:clusterName": "genkey", "k3s-cluster:adminCidrs": '["203.0.113.0/24"]', "k3s-cluster:agents": "1" });
    const cluster = new ClusterComponent("genkey", { config, modulesDir });
    await settle(cluster.agentPrivateIps);
    const mine = registered.filter((r) => r.name.startsWith("genkey-"));
    assert.ok(mine.some((r) => r.type === "tls:index/privateKey:PrivateKey" && r.inputs.algorithm === "ED25519"));
    const keyPair = mine.find((r) => r.type === "aws:ec2/keyPair:KeyPair");
    assert.match(keyPair?.inputs.publicKey, /^ssh-ed25519 .*Generated/);
    assert.deepEqual(recorder.plaintextOccurrences("GENERATEDKEY"), [], "the generated private key is never a plaintext input");
    assert.ok(recorder.secretOccurrences("GENERATEDKEY").length > 0, "it does reach the SSH connections, as a secret");
  });

  it("each node's steps are <node>-<step> and reach that instance's public IP as the image's user, pinned after first contact", async () => {
    await build("reach", 3, 2);
    await registrationsSettled(recorder);
    const nodes = ["reach-server-0", "reach-server-1", "reach-server-2", "reach-agent-0", "reach-agent-1"];
    const steps = recorder.registrations.filter((r) => r.type === REMOTE_COMMAND_TYPE && r.name.startsWith("reach-") && BOOTSTRAP_STEP.test(r.name));
    assert.deepEqual(steps.map((r) => r.name).sort(), [
      ...nodes.flatMap((n) => ["cloud-init", "puppet-agent", "modules", "puppet-apply", "start", ...(n === "reach-server-0" ? [] : ["token-file"])].map((s) => `${n}-${s}`)),
      "reach-kubeconfig",
    ].sort());
    for (const r of steps) {
      const node = r.name === "reach-kubeconfig" ? "reach-server-0" : nodes.find((n) => r.name.startsWith(`${n}-`))!;
      const conn = plain(r.rawInputs.connection);
      assert.deepEqual([conn.host, conn.port, conn.user], [publicIps.get(node), 22, "ubuntu"], r.name);
      assert.equal(conn.privateKey, BASE["k3s-cluster:sshPrivateKey"]);
      assert.equal(conn.hostKey, r.name.endsWith("-cloud-init") ? "" : hostKeyOf(node), `${r.name}: the key ${node} showed at first contact`);
    }
    for (const server of nodes.slice(0, 3)) {
      const v = plain(recorder.find(`${server}-token`).rawInputs);
      assert.deepEqual([v.serverId, v.host, v.sshPort, v.username, v.expectedHostKey, v.nodeName],
        [`${server}-id`, publicIps.get(server), 22, "ubuntu", hostKeyOf(server), server], "the verification reaches the same machine the same way");
    }
  });

  it("a custom image's login user is the one every step and the verification log in as, through sudo", async () => {
    await build("custom", 1, 1, { "k3s-cluster:ami": "ami-0abc1234", "k3s-cluster:sshUser": "admin" });
    await registrationsSettled(recorder);
    const steps = recorder.registrations.filter((r) => r.type === REMOTE_COMMAND_TYPE && r.name.startsWith("custom-") && BOOTSTRAP_STEP.test(r.name));
    assert.equal(steps.length, 5 + 6 + 1);
    for (const r of steps) assert.equal(plain(r.rawInputs.connection).user, "admin", r.name);
    assert.match(plain(recorder.find("custom-agent-0-puppet-apply").rawInputs.create), /^timeout -k 10 1200 sudo -n bash -c /);
    assert.equal(plain(recorder.find("custom-server-0-token").rawInputs.username), "admin");
    const instances = registered.filter((r) => r.type === "aws:ec2/instance:Instance" && r.name.startsWith("custom-"));
    assert.deepEqual(instances.map((i) => i.inputs.ami), ["ami-0abc1234", "ami-0abc1234"]);
  });

  it("parents every child to the component", async () => {
    await build("parents", 1, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const children = recorder.registrations.filter((r) => r.name.startsWith("parents-") && r.urn);
    assert.ok(children.length > 20, `${children.length} children`);
    // A node's bootstrap steps sit under its NodeBootstrap component, which sits under the cluster.
    for (const child of children) {
      const parentType = child.type === "k3s:index:NodeBootstrap" ? "Cluster" : "(Cluster|NodeBootstrap)";
      assert.match(child.urn, new RegExp(`::k3s:index:${parentType}\\$`), `${child.name} is parented: ${child.urn}`);
    }
  });

  it("day-two settings reach the resources: drainTimeout, maxUnavailableAgents, tokenRotation; the policy names the servers setting", async () => {
    const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply((v) => { resolve(v); return v; }));
    const { cluster } = await build("days", 3, 2, {
      "k3s-cluster:drainTimeout": "30", "k3s-cluster:maxUnavailableAgents": "3", "k3s-cluster:tokenRotation": "2026-11",
      "k3s-cluster:k3sVersion": "v1.35.0+k3s1",
    });
    await build("plain", 1, 1);
    await registrationsSettled(recorder);
    const input = (name: string, key: string) => plain(recorder.find(name).rawInputs[key]);
    for (const node of ["days-server-0", "days-server-1", "days-server-2", "days-agent-0", "days-agent-1"]) {
      assert.match(input(`${node}-member`, "delete"), /--timeout=30s/, `${node} drains within drainTimeout`);
    }
    assert.match(input("plain-agent-0-member", "delete"), /--timeout=120s/, "default drainTimeout");
    assert.equal(input("days-agent-1-start", "around").limit, 3);
    assert.equal(input("plain-agent-0-start", "around").limit, 1, "default maxUnavailableAgents");
    assert.match(input("days-agent-1-start", "around").before, /release='\\''v1\.35\.0\+k3s1'\\''/);
    assert.deepEqual(input("days-token-rotation", "rerunOn"), ["2026-11"]);
    assert.deepEqual(input("plain-token-rotation", "rerunOn"), [""]);
    assert.match(input("days-server-2-token", "revision"), /^[0-9a-f]{64}:2026-11$/);
    const policy = plain(recorder.find("days-policy").rawInputs);
    assert.deepEqual([policy.k3sVersion, policy.serversKey, policy.servers], ["v1.35.0+k3s1", "servers", ["days-server-0", "days-server-1", "days-server-2"]]);
    assert.deepEqual(await value(cluster.nodes), [
      ...[0, 1, 2].map((i) => ({ name: `days-server-${i}`, role: "server", status: "Ready" })),
      ...[0, 1].map((i) => ({ name: `days-agent-${i}`, role: "agent", status: "Ready" })),
    ]);
  });

  it("retiredNodes: a retired node is replaced by the next free number, and a retired first server by the next server listed", async () => {
    const { ips } = await build("retire", 3, 2, { "k3s-cluster:retiredNodes": '["retire-server-0","retire-agent-0"]' });
    await registrationsSettled(recorder);
    const instances = registered.filter((r) => r.type === "aws:ec2/instance:Instance" && r.name.startsWith("retire-")).map((r) => r.name);
    assert.deepEqual(instances.sort(), ["retire-agent-1", "retire-agent-2", "retire-server-1", "retire-server-2", "retire-server-3"]);
    const manifest = (node: string) => plain(recorder.find(`${node}-puppet-apply`).rawInputs.stdin) as string;
    assert.match(manifest("retire-server-1"), /cluster_init +=> true/, "the first server listed leads");
    assert.doesNotMatch(manifest("retire-server-1"), /server_url/);
    assert.match(manifest("retire-server-3"), /cluster_init +=> false/);
    assert.match(manifest("retire-server-3"), new RegExp(`server_url +=> 'https://${ips[0][0].replace(/\./g, "\\.")}:6443'`), "the new server joins through it");
    assert.deepEqual(plain(recorder.find("retire-policy").rawInputs).servers, ["retire-server-1", "retire-server-2", "retire-server-3"]);
    assert.equal(ips[0].length, 3);
    assert.equal(ips[1].length, 2);
  });

  it("a bad config fails with every message before any resource is registered", () => {
    const before = registered.length;
    assert.throws(
      () => loadConfig({ ...BASE, "k3s-cluster:clusterName": "Bad_Name", "k3s-cluster:servers": "2" }),
      (err: Error) => /clusterName must be a DNS-1123 label/.test(err.message) && /servers must be 1, 3, 5 or 7/.test(err.message),
    );
    assert.equal(registered.length, before);
  });
});
