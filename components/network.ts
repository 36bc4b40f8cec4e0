// The cluster's network: a new VPC with public subnets in two or more zones (or the user's own), and
// security groups that open exactly the ports k3s needs, one rule resource per rule.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export interface NetworkArgs {
  clusterName: string;
  adminCidrs: string[];
  vpcId?: string;
  subnetIds?: string[];
  tags: Record<string, string>;
}

export interface Network {
  vpcId: pulumi.Output<string>;
  subnetIds: pulumi.Output<string[]>;
  serverSecurityGroupId: pulumi.Output<string>;
  agentSecurityGroupId: pulumi.Output<string>;
}

/** What each rule opens: the k3s port map (supervisor+API, etcd, kubelet, flannel VXLAN). */
interface Rule {
  name: string;
  protocol: "tcp" | "udp";
  from: number;
  to: number;
  description: string;
}

const API: Rule = { name: "api", protocol: "tcp", from: 6443, to: 6443, description: "k3s supervisor and Kubernetes API" };
const SSH: Rule = { name: "ssh", protocol: "tcp", from: 22, to: 22, description: "SSH for the Puppet bootstrap and verification" };
const ETCD: Rule = { name: "etcd", protocol: "tcp", from: 2379, to: 2380, description: "embedded etcd, servers only" };
const KUBELET: Rule = { name: "kubelet", protocol: "tcp", from: 10250, to: 10250, description: "kubelet metrics and logs" };
const VXLAN: Rule = { name: "vxlan", protocol: "udp", from: 8472, to: 8472, description: "flannel VXLAN" };

export function createNetwork(name: string, args: NetworkArgs, parent: pulumi.Resource): Network {
  const opts = { parent };
  let vpcId: pulumi.Output<string>;
  let subnetIds: pulumi.Output<string[]>;
  if (args.vpcId && args.subnetIds) {
    vpcId = pulumi.output(args.vpcId);
    subnetIds = pulumi.output(args.subnetIds);
  } else {
    const vpc = new aws.ec2.Vpc(`${name}-vpc`, {
      cidrBlock: "10.0.0.0/16",
      enableDnsHostnames: true,
      enableDnsSupport: true,
      tags: { ...args.tags, Name: `${name}-vpc` },
    }, opts);
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: { ...args.tags, Name: `${name}-igw` } }, opts);
    const routes = new aws.ec2.RouteTable(`${name}-public`, {
      vpcId: vpc.id,
      routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }],
      tags: { ...args.tags, Name: `${name}-public` },
    }, opts);
    const zones = aws.getAvailabilityZonesOutput({ state: "available" }, opts);
    const subnets = [0, 1].map((i) => {
      const subnet = new aws.ec2.Subnet(`${name}-public-${i}`, {
        vpcId: vpc.id,
        cidrBlock: `10.0.${i}.0/24`,
        availabilityZone: zones.names.apply((n) => n[i % n.length]),
        mapPublicIpOnLaunch: true,
        tags: { ...args.tags, Name: `${name}-public-${i}` },
      }, opts);
      new aws.ec2.RouteTableAssociation(`${name}-public-${i}`, { subnetId: subnet.id, routeTableId: routes.id }, opts);
      return subnet;
    });
    vpcId = vpc.id;
    subnetIds = pulumi.all(subnets.map((s) => s.id));
  }

  const group = (role: string) =>
    new aws.ec2.SecurityGroup(`${name}-${role}-sg`, {
      vpcId,
      description: `k3s ${role}s of ${args.clusterName}`,
      tags: { ...args.tags, Name: `${name}-${role}-sg` },
    }, opts);
  const servers = group("server");
  const agents = group("agent");

  const ingress = (id: string, sg: aws.ec2.SecurityGroup, rule: Rule, source: { cidr?: string; sg?: pulumi.Input<string> }) =>
    new aws.vpc.SecurityGroupIngressRule(`${name}-${id}`, {
      securityGroupId: sg.id,
      ipProtocol: rule.protocol,
      fromPort: rule.from,
      toPort: rule.to,
      cidrIpv4: source.cidr,
      referencedSecurityGroupId: source.sg,
      description: rule.description,
    }, opts);

  args.adminCidrs.forEach((cidr, i) => {
    ingress(`server-ssh-admin-${i}`, servers, SSH, { cidr });
    ingress(`server-api-admin-${i}`, servers, API, { cidr });
    ingress(`agent-ssh-admin-${i}`, agents, SSH, { cidr });
  });
  ingress("server-api-from-servers", servers, API, { sg: servers.id });
  ingress("server-api-from-agents", servers, API, { sg: agents.id });
  ingress("server-etcd-from-servers", servers, ETCD, { sg: servers.id });
  for (const [target, sg] of [["server", servers], ["agent", agents]] as const) {
    for (const [source, from] of [["servers", servers], ["agents", agents]] as const) {
      ingress(`${target}-kubelet-from-${source}`, sg, KUBELET, { sg: from.id });
      ingress(`${target}-vxlan-from-${source}`, sg, VXLAN, { sg: from.id });
    }
  }
  for (const [role, sg] of [["server", servers], ["agent", agents]] as const) {
    new aws.vpc.SecurityGroupEgressRule(`${name}-${role}-egress`, {
      securityGroupId: sg.id,
      ipProtocol: "-1",
      cidrIpv4: "0.0.0.0/0",
      description: "packages, images and the install script",
    }, opts);
  }
  return { vpcId, subnetIds, serverSecurityGroupId: servers.id, agentSecurityGroupId: agents.id };
}
