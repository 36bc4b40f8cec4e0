// Test nodes given to a stack as `k3s-cluster:hosts`: machines that already exist, reached over SSH, with
// the k3s simulator as the release the Puppet module installs from a mirror on the bridge address.
import * as path from "node:path";
import { startNodes, testSshKey, type TestNode } from "../rig/nodes";
import { run } from "../rig/sh";

export interface SimKnobs {
  tokenDelay?: number;
  apiReadyDelay?: number;
  nodeReadyDelay?: number;
  etcdJoinDelay?: number;
  agentJoinDelay?: number;
  faults?: Record<string, unknown>;
}

export interface HostsSpec {
  /** Node name prefix, e.g. `eng-a` → `eng-a-s0`, `eng-a-a0`. */
  prefix: string;
  servers: number;
  agents: number;
  /** Last octet of the first node's address; the others follow in 198.51.100.0/24. */
  firstOctet: number;
  knobs?: SimKnobs;
  /** Knobs for particular servers (by index), over `knobs`. */
  serverKnobs?: Record<number, SimKnobs>;
  /** Give the stack each node's host-key fingerprint (the user knows them); otherwise first contact pins them. */
  knownHostKeys?: boolean;
}

export interface HostEntry {
  name: string;
  address: string;
  role: "server" | "agent";
  sshUser: string;
  hostKey?: string;
}

export interface BootedHosts {
  nodes: Map<string, TestNode>;
  hosts: HostEntry[];
  stop(): Promise<void>;
}

export function hostEntries(spec: HostsSpec): Omit<HostEntry, "hostKey">[] {
  const out: Omit<HostEntry, "hostKey">[] = [];
  for (let i = 0; i < spec.servers; i++) {
    out.push({ name: `${spec.prefix}-s${i}`, address: `198.51.100.${spec.firstOctet + i}`, role: "server", sshUser: "ubuntu" });
  }
  for (let i = 0; i < spec.agents; i++) {
    out.push({ name: `${spec.prefix}-a${i}`, address: `198.51.100.${spec.firstOctet + spec.servers + i}`, role: "agent", sshUser: "ubuntu" });
  }
  return out;
}

/** `SHA256:…` of the node's ed25519 host key, as `ssh-keygen -l` prints it. */
export async function hostKeyOf(node: Pick<TestNode, "name" | "rootDir">): Promise<string> {
  const r = await run("ssh-keygen", ["-l", "-f", path.join(node.rootDir, "etc/ssh/ssh_host_ed25519_key.pub")]);
  const fp = r.stdout.split(/\s+/)[1];
  if (!/^SHA256:/.test(fp ?? "")) throw new Error(`no host key fingerprint for ${node.name}: ${r.stdout}`);
  return fp;
}

export async function configureKnobs(node: TestNode, knobs: SimKnobs): Promise<void> {
  await node.exec("cat > /etc/k3s-sim.json", { input: JSON.stringify(knobs) });
}

export async function bootHosts(spec: HostsSpec): Promise<BootedHosts> {
  const entries = hostEntries(spec);
  const started = await startNodes(entries.map((e) => ({ name: e.name, ip: e.address })));
  const nodes = new Map(started.map((n) => [n.name, n]));
  const hosts: HostEntry[] = [];
  for (const [i, e] of entries.entries()) {
    const node = nodes.get(e.name)!;
    const serverIndex = e.role === "server" ? i : -1;
    await configureKnobs(node, { ...spec.knobs, ...(serverIndex >= 0 ? spec.serverKnobs?.[serverIndex] : {}) });
    hosts.push(spec.knownHostKeys ? { ...e, hostKey: await hostKeyOf(node) } : e);
  }
  return { nodes, hosts, stop: () => Promise.all(started.map((n) => n.stop())).then(() => undefined) };
}

export function sshPrivateKey(): string {
  return testSshKey().privateKey;
}
