// ClusterComponent: the k3s cluster on EC2. Data flows one way — config → network → servers →
// (Puppet bootstrap → seven-step token verification) → agents → outputs.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as tls from "@pulumi/tls";
import type { ClusterConfig } from "./config";
import { createNetwork } from "./network";
import { architectureOf, createNode, type Role } from "./node";
import { joinCluster, type NodeHandle } from "./orchestration";
import type { PublicVerificationReport } from "./server-token";

export interface ClusterArgs {
  /** Validated stack settings (components/config.ts). */
  readonly config: ClusterConfig;
  /** Puppet modules copied to every node; defaults to this project's `puppet/modules`. */
  readonly modulesDir?: string;
}

const UBUNTU_OWNER = "099720109477";

export class ClusterComponent extends pulumi.ComponentResource {
  declare readonly serverPublicIps: pulumi.Output<string[]>;
  declare readonly serverPrivateIps: pulumi.Output<string[]>;
  declare readonly agentPrivateIps: pulumi.Output<string[]>;
  declare readonly serverUrl: pulumi.Output<string>;
  declare readonly apiEndpoint: pulumi.Output<string>;
  /** The verified server join token (secret). */
  declare readonly token: pulumi.Output<string>;
  /** The agent-scoped join token agents used (secret). */
  declare readonly agentToken: pulumi.Output<string>;
  /** Admin kubeconfig pointing at apiEndpoint, context named after the cluster (secret). */
  declare readonly kubeconfig: pulumi.Output<string>;
  /** The seven-step report of the first server, without tokens. */
  declare readonly verification: pulumi.Output<PublicVerificationReport>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k3s:index:Cluster", name, {}, opts);
    const c = args.config;
    const tags = { ...c.tags, "k3s:cluster": c.clusterName };
    const network = createNetwork(name, { clusterName: c.clusterName, adminCidrs: c.adminCidrs, vpcId: c.vpcId, subnetIds: c.subnetIds, tags }, this);

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
        }, { parent: this }).id);
      }
      return amis.get(arch)!;
    };

    // The stack's key pair, or one generated here whose private half stays a secret in state.
    const generated = c.sshPublicKey ? undefined : new tls.PrivateKey(`${name}-ssh-key`, { algorithm: "ED25519" }, { parent: this });
    const sshPublicKey: pulumi.Input<string> = c.sshPublicKey ?? generated!.publicKeyOpenssh;
    const sshPrivateKey: pulumi.Output<string> = pulumi.secret(c.sshPrivateKey ?? generated!.privateKeyOpenssh);
    const keyPair = new aws.ec2.KeyPair(`${name}-key`, {
      publicKey: sshPublicKey,
      tags,
    }, { parent: this });

    const host = (role: Role, index: number, dependsOn: pulumi.Resource[] = []): NodeHandle => {
      const nodeName = `${name}-${role}-${index}`;
      const server = role === "server";
      const instanceType = server ? c.serverInstanceType : c.agentInstanceType;
      const instance = createNode(nodeName, {
        clusterName: c.clusterName, role, index, instanceType, ami: amiFor(instanceType),
        subnetIds: network.subnetIds,
        securityGroupId: server ? network.serverSecurityGroupId : network.agentSecurityGroupId,
        keyName: keyPair.keyName, tags: c.tags,
      }, { parent: this, dependsOn });
      return { name: nodeName, id: instance.id, sshHost: instance.publicIp, privateIp: instance.privateIp };
    };

    const servers = Array.from({ length: c.servers }, (_, i) => host("server", i));
    // Servers are bootstrapped with Puppet and verified one at a time; agents are created behind the
    // first server's verification and join with the token it returned.
    const joined = joinCluster(this, {
      clusterName: c.clusterName,
      servers,
      createAgents: (dependsOn) => Array.from({ length: c.agents }, (_, i) => host("agent", i, dependsOn)),
      sshUser: c.sshUser ?? "ubuntu",
      sshPrivateKey,
      k3sVersion: c.k3sVersion,
      k3sBinaryUrl: c.k3sBinaryUrl,
      k3sBinarySha256: c.k3sBinarySha256,
      autoTokenSharing: c.autoTokenSharing,
      token: c.token === undefined ? undefined : pulumi.secret(c.token),
      waitForToken: c.waitForToken,
      tokenTimeout: c.tokenTimeout,
      pollInterval: c.pollInterval,
      apiEndpoint: servers[0].sshHost,
      modulesDir: args.modulesDir,
    });

    this.serverPublicIps = pulumi.all(servers.map((s) => s.sshHost));
    this.serverPrivateIps = pulumi.all(servers.map((s) => s.privateIp));
    this.agentPrivateIps = pulumi.all(joined.agents.map((a) => a.privateIp));
    this.serverUrl = pulumi.interpolate`https://${servers[0].privateIp}:6443`;
    this.apiEndpoint = pulumi.interpolate`https://${servers[0].sshHost}:6443`;
    this.token = joined.token;
    this.agentToken = joined.agentToken;
    this.kubeconfig = joined.kubeconfig;
    this.verification = joined.verification;
    this.registerOutputs({
      token: this.token,
      agentToken: this.agentToken,
      kubeconfig: this.kubeconfig,
      verification: this.verification,
      serverPublicIps: this.serverPublicIps,
      serverPrivateIps: this.serverPrivateIps,
      agentPrivateIps: this.agentPrivateIps,
      serverUrl: this.serverUrl,
      apiEndpoint: this.apiEndpoint,
    });
  }
}
