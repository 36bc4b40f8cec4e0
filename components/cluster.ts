// ClusterComponent: a k3s cluster. Data flows one way — config → topology (EC2 instances, or the machines
// given in `hosts`) → Puppet bootstrap → seven-step token verification → agents → kubeconfig → outputs.
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "./config";
import { hostsTopology } from "./hosts-topology";
import { joinCluster } from "./orchestration";
import type { NodeStatus } from "./cluster-check";
import type { PublicVerificationReport } from "./server-token";
import type { Ec2Topology, Topology } from "./topology";

export interface ClusterArgs {
  /** Validated stack settings (components/config.ts). */
  readonly config: ClusterConfig;
  /** Puppet modules copied to every node; defaults to this project's `puppet/modules`. */
  readonly modulesDir?: string;
}

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
  /** Every declared node as the cluster lists it: name, role, Ready (checked after the agents joined). */
  declare readonly nodes: pulumi.Output<NodeStatus[]>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k3s:index:Cluster", name, {}, opts);
    const c = args.config;
    // The AWS and TLS packages load only for EC2: a `hosts` stack never touches them — not even their type
    // declarations, which would cost ts-node seconds at every `pulumi up`.
    const topology: Topology = c.hosts
      ? hostsTopology(name, c)
      : (require("./ec2-topology") as { ec2Topology: Ec2Topology }).ec2Topology(name, c, this);
    const { servers } = topology;

    // Servers are bootstrapped with Puppet and verified one at a time; agents are created behind the
    // first server's verification and join with the token it returned.
    const joined = joinCluster(this, {
      clusterName: c.clusterName,
      servers,
      createAgents: topology.createAgents,
      sshUser: topology.sshUser,
      sshPrivateKey: topology.sshPrivateKey,
      k3sVersion: c.k3sVersion,
      k3sBinaryUrl: c.k3sBinaryUrl,
      k3sBinarySha256: c.k3sBinarySha256,
      autoTokenSharing: c.autoTokenSharing,
      token: c.token === undefined ? undefined : pulumi.secret(c.token),
      waitForToken: c.waitForToken,
      tokenTimeout: c.tokenTimeout,
      pollInterval: c.pollInterval,
      apiEndpoint: topology.apiEndpoint,
      modulesDir: args.modulesDir,
      drainTimeout: c.drainTimeout,
      serversKey: c.hosts ? "hosts" : "servers",
      machines: c.hosts && Object.fromEntries(c.hosts.map((h) => [h.name, `${h.address}:${h.sshPort ?? 22}`])),
      maxUnavailableAgents: c.maxUnavailableAgents,
      tokenRotation: c.tokenRotation,
    });

    this.serverPublicIps = pulumi.all(servers.map((s) => s.sshHost));
    this.serverPrivateIps = pulumi.all(servers.map((s) => s.privateIp));
    this.agentPrivateIps = pulumi.all(joined.agents.map((a) => a.privateIp));
    this.serverUrl = pulumi.interpolate`https://${servers[0].privateIp}:6443`;
    this.apiEndpoint = pulumi.interpolate`https://${topology.apiEndpoint}:6443`;
    this.token = joined.token;
    this.agentToken = joined.agentToken;
    this.kubeconfig = joined.kubeconfig;
    this.verification = joined.verification;
    this.nodes = joined.nodes;
    this.registerOutputs({
      token: this.token,
      agentToken: this.agentToken,
      kubeconfig: this.kubeconfig,
      verification: this.verification,
      nodes: this.nodes,
      serverPublicIps: this.serverPublicIps,
      serverPrivateIps: this.serverPrivateIps,
      agentPrivateIps: this.agentPrivateIps,
      serverUrl: this.serverUrl,
      apiEndpoint: this.apiEndpoint,
    });
  }
}
