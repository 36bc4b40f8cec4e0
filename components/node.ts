// One EC2 host of the cluster: hardened (IMDSv2 only, encrypted gp3 root) and tagged with its role.
// No user data: nothing secret, and nothing at all, travels through it; Puppet configures the node.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export type Role = "server" | "agent";

export interface NodeArgs {
  clusterName: string;
  role: Role;
  index: number;
  instanceType: string;
  ami: pulumi.Input<string>;
  subnetIds: pulumi.Input<string[]>;
  securityGroupId: pulumi.Input<string>;
  keyName: pulumi.Input<string>;
  tags: Record<string, string>;
}

/** Graviton families run arm64 images. */
export function architectureOf(instanceType: string): "arm64" | "x86_64" {
  return /^[a-z]+\d+g[a-z]*\./.test(instanceType) ? "arm64" : "x86_64";
}

export function createNode(name: string, args: NodeArgs, opts: pulumi.CustomResourceOptions): aws.ec2.Instance {
  return new aws.ec2.Instance(name, {
    ami: args.ami,
    instanceType: args.instanceType,
    // Round-robin across subnets spreads nodes over availability zones.
    subnetId: pulumi.output(args.subnetIds).apply((ids) => ids[args.index % ids.length]),
    vpcSecurityGroupIds: [args.securityGroupId],
    keyName: args.keyName,
    associatePublicIpAddress: true,
    metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 2 },
    rootBlockDevice: { volumeType: "gp3", volumeSize: args.role === "server" ? 40 : 30, encrypted: true },
    tags: { ...args.tags, Name: name, "k3s:cluster": args.clusterName, "k3s:role": args.role },
  // A new image (yours, or a newer default Ubuntu) is for new nodes: replacing a running instance in place
  // would take its node down. Nodes move to an image by being retired (k3s-cluster:retiredNodes) and replaced.
  }, pulumi.mergeOptions(opts, { ignoreChanges: ["ami"] }));
}
