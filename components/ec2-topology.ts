// EC2 instances for the cluster: the network, one image lookup per architecture, the key pair (given or
// generated), servers at once and agents behind whatever the join flow says they wait for.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as tls from "@pulumi/tls";
import type { ClusterConfig } from "./config";
import { createNetwork } from "./network";
import { architectureOf, createNode, type Role } from "./node";
import type { NodeHandle } from "./orchestration";
import type { Ec2Topology, Topology } from "./topology";

const UBUNTU_OWNER = "099720109477";

/**
 * The numbers of a role's `count` nodes: the lowest ones not retired. Retiring `demo-agent-0` of two agents
 * gives agents 1 and 2 — a new node in, the retired one out, in one update.
 */
export function liveIndexes(name: string, role: Role, count: number, retired: readonly string[]): number[] {
  const indexes: number[] = [];
  for (let i = 0; indexes.length < count; i++) if (!retired.includes(`${name}-${role}-${i}`)) indexes.push(i);
  return indexes;
}

export const ec2Topology: Ec2Topology = (name: string, c: ClusterConfig, parent: pulumi.Resource): Topology => {
  const tags = { ...c.tags, "k3s:cluster": c.clusterName };
  const network = createNetwork(name, { clusterName: c.clusterName, adminCidrs: c.adminCidrs, vpcId: c.vpcId, subnetIds: c.subnetIds, tags }, parent);

  // One image lookup per architecture, not per node: a 3+500 cluster needs at most two.
  const amis = new Map<string, pulumi.Input<string>>();
  const amiFor = (instanceType: string): pulumi.Input<string> => {
    const arch = architectureOf(instanceType);
    if (!amis.has(arch)) {
      amis.set(arch, c.ami ?? aws.ec2.getAmiOutput({
        mostRecent: true,
        owners: [UBUNTU_OWNER],
        filters: [
          { name: "name", values: [`ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${arch === "arm64" ? "arm64" : "amd64"}-server-*`] },
          { name: "virtualization-type", values: ["hvm"] },
        ],
      }, { parent }).id);
    }
    return amis.get(arch)!;
  };

  // The stack's key pair, or one generated here whose private half stays a secret in state.
  const generated = c.sshPublicKey ? undefined : new tls.PrivateKey(`${name}-ssh-key`, { algorithm: "ED25519" }, { parent });
  const sshPublicKey: pulumi.Input<string> = c.sshPublicKey ?? generated!.publicKeyOpenssh;
  const sshPrivateKey: pulumi.Output<string> = pulumi.secret(c.sshPrivateKey ?? generated!.privateKeyOpenssh);
  const keyPair = new aws.ec2.KeyPair(`${name}-key`, { publicKey: sshPublicKey, tags }, { parent });

  const host = (role: Role, index: number, dependsOn: pulumi.Resource[] = []): NodeHandle => {
    const nodeName = `${name}-${role}-${index}`;
    const server = role === "server";
    const instanceType = server ? c.serverInstanceType : c.agentInstanceType;
    const instance = createNode(nodeName, {
      clusterName: c.clusterName, role, index, instanceType, ami: amiFor(instanceType),
      subnetIds: network.subnetIds,
      securityGroupId: server ? network.serverSecurityGroupId : network.agentSecurityGroupId,
      keyName: keyPair.keyName, tags: c.tags,
    }, { parent, dependsOn });
    return { name: nodeName, resourceName: nodeName, id: instance.id, sshHost: instance.publicIp, privateIp: instance.privateIp };
  };

  const servers = liveIndexes(name, "server", c.servers, c.retiredNodes).map((i) => host("server", i));
  return {
    servers,
    createAgents: (dependsOn) => liveIndexes(name, "agent", c.agents, c.retiredNodes).map((i) => host("agent", i, dependsOn)),
    sshUser: c.sshUser ?? "ubuntu",
    sshPrivateKey,
    apiEndpoint: servers[0].sshHost,
  };
};
