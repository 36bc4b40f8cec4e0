// Where a cluster's machines come from, as the join flow needs them: EC2 instances the program creates
// (ec2-topology.ts) or machines the stack lists in `k3s-cluster:hosts` (hosts-topology.ts). Everything
// after this point — bootstrap, verification, gating, kubeconfig, outputs — is the same code for both.
import type * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "./config";
import type { NodeHandle } from "./orchestration";

export interface Topology {
  servers: NodeHandle[];
  /** Creates (or names) the agents; called once with what they must wait for (see JoinArgs.createAgents). */
  createAgents: (dependsOn: pulumi.Resource[]) => NodeHandle[];
  /** Login user for nodes that do not name their own. */
  sshUser: string;
  /** Always a secret. */
  sshPrivateKey: pulumi.Output<string>;
  /** Host (or URL) kubectl uses: the first server's public address. */
  apiEndpoint: pulumi.Input<string>;
}

/** ec2-topology.ts's entry point, typed here so that choosing `hosts` never loads the AWS declarations. */
export type Ec2Topology = (name: string, c: ClusterConfig, parent: pulumi.Resource) => Topology;
