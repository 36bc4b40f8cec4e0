// Machines you already have (`k3s-cluster:hosts`): bare metal, other clouds, test nodes. Nothing is created
// for them — no AWS or TLS resource, no cloud credentials — they are only reached over SSH.
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig, HostSpec } from "./config";
import type { NodeHandle } from "./orchestration";
import type { Topology } from "./topology";

function handle(component: string, h: HostSpec): NodeHandle {
  return {
    name: h.name,
    resourceName: `${component}-${h.name}`,
    // A machine is identified by where it is reached: a new address is a new machine.
    id: `${h.address}:${h.sshPort ?? 22}`,
    sshHost: h.address,
    sshPort: h.sshPort ?? 22,
    sshUser: h.sshUser,
    hostKey: h.hostKey,
    privateIp: h.privateAddress ?? h.address,
  };
}

export function hostsTopology(component: string, c: ClusterConfig): Topology {
  const hosts = c.hosts ?? [];
  const servers = hosts.filter((h) => h.role === "server").map((h) => handle(component, h));
  const agents = hosts.filter((h) => h.role === "agent").map((h) => handle(component, h));
  return {
    servers,
    createAgents: () => agents,
    sshUser: c.sshUser ?? "root",
    sshPrivateKey: pulumi.secret(c.sshPrivateKey as string),
    apiEndpoint: servers[0].sshHost,
  };
}
