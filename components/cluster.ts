// ClusterComponent: the k3s cluster on EC2. Data flows one way — config → network → servers →
// (Puppet bootstrap → seven-step token verification) → agents → outputs.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import type { ClusterConfig } from "./config";
import { createNetwork } from "./network";
import { architectureOf, createNode } from "./node";

export interface ClusterArgs {
  /** Validated stack settings (components/config.ts). */
  readonly config: ClusterConfig;
}

const UBUNTU_OWNER = "099720109477";

export class ClusterComponent extends pulumi.ComponentResource {
  declare readonly serverPublicIps: pulumi.Output<string[]>;
  declare readonly serverPrivateIps: pulumi.Output<string[]>;
  declare readonly agentPrivateIps: pulumi.Output<string[]>;
  declare readonly serverUrl: pulumi.Output<string>;
  declare readonly apiEndpoint: pulumi.Output<string>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k3s:index:Cluster", name, {}, opts);
    const c = args.config;
    const tags = { ...c.tags, "k3s:cluster": c.clusterName };
    const network = createNetwork(name, { clusterName: c.clusterName, adminCidrs: c.adminCidrs, vpcId: c.vpcId, subnetIds: c.subnetIds, tags }, this);

    const amiFor = (instanceType: string): pulumi.Input<string> =>
      c.ami ??
      aws.ec2.getAmiOutput({
        mostRecent: true,
        owners: [UBUNTU_OWNER],
        filters: [
          { name: "name", values: [`ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${architectureOf(instanceType) === "arm64" ? "arm64" : "amd64"}-server-*`] },
          { name: "virtualization-type", values: ["hvm"] },
        ],
      }, { parent: this }).id;

    const keyPair = new aws.ec2.KeyPair(`${name}-key`, {
      publicKey: c.sshPublicKey as string,
      tags,
    }, { parent: this });

    const servers = Array.from({ length: c.servers }, (_, i) =>
      createNode(`${name}-server-${i}`, {
        clusterName: c.clusterName, role: "server", index: i, instanceType: c.serverInstanceType,
        ami: amiFor(c.serverInstanceType), subnetIds: network.subnetIds, securityGroupId: network.serverSecurityGroupId,
        keyName: keyPair.keyName, tags: c.tags,
      }, { parent: this }),
    );

    // Seam: the Puppet bootstrap of each server and the ServerToken verification resource slot in
    // here (components/bootstrap.ts); agents then take `dependsOn: [verification]`.
    const agents = Array.from({ length: c.agents }, (_, i) =>
      createNode(`${name}-agent-${i}`, {
        clusterName: c.clusterName, role: "agent", index: i, instanceType: c.agentInstanceType,
        ami: amiFor(c.agentInstanceType), subnetIds: network.subnetIds, securityGroupId: network.agentSecurityGroupId,
        keyName: keyPair.keyName, tags: c.tags,
      }, { parent: this, dependsOn: servers }),
    );

    this.serverPublicIps = pulumi.all(servers.map((s) => s.publicIp));
    this.serverPrivateIps = pulumi.all(servers.map((s) => s.privateIp));
    this.agentPrivateIps = pulumi.all(agents.map((a) => a.privateIp));
    this.serverUrl = servers[0].privateIp.apply((ip) => `https://${ip}:6443`);
    this.apiEndpoint = servers[0].publicIp.apply((ip) => `https://${ip}:6443`);
    this.registerOutputs({
      serverPublicIps: this.serverPublicIps,
      serverPrivateIps: this.serverPrivateIps,
      agentPrivateIps: this.agentPrivateIps,
      serverUrl: this.serverUrl,
      apiEndpoint: this.apiEndpoint,
    });
  }
}
