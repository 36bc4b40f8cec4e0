import * as crypto from "node:crypto";
import type { NodeRecord } from "./cluster-store";

// kubectl's duration.HumanDuration, so AGE reads as kubectl prints it.
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const years = Math.floor(hours / 24 / 365);
  if (hours < 24 * 365 * 8) return `${years}y${Math.floor(hours / 24) % 365}d`;
  return `${years}y`;
}

function minorOf(version: string): number {
  const m = /^v1\.(\d+)\./.exec(version);
  return m ? Number(m[1]) : 34;
}

export function nodeLabels(n: NodeRecord): Record<string, string> {
  const labels: Record<string, string> = {
    "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
    "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "k3s",
  };
  if (n.role === "server") {
    labels["node-role.kubernetes.io/control-plane"] = "true";
    labels["node-role.kubernetes.io/etcd"] = "true";
    // k3s stopped adding the master role label in v1.34.
    if (minorOf(n.version) < 34) labels["node-role.kubernetes.io/master"] = "true";
  }
  for (const l of n.labels) {
    const eq = l.indexOf("=");
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? "" : l.slice(eq + 1);
  }
  return labels;
}

export function roles(n: NodeRecord): string {
  const r = Object.keys(nodeLabels(n)).filter((k) => k.startsWith("node-role.kubernetes.io/")).map((k) => k.slice(24)).sort();
  return r.length ? r.join(",") : "<none>";
}

export function isReady(n: NodeRecord, now = Date.now()): boolean {
  return n.readyAt !== null && now >= n.readyAt;
}

function metadata(n: NodeRecord): Record<string, unknown> {
  return {
    name: n.name,
    uid: crypto.createHash("sha256").update(n.name).digest("hex").replace(/^(.{8})(.{4})(.{4})(.{4})(.{12}).*$/, "$1-$2-$3-$4-$5"),
    resourceVersion: String(n.createdAt % 1000000),
    creationTimestamp: new Date(n.createdAt).toISOString().replace(/\.\d+Z$/, "Z"),
    labels: nodeLabels(n),
    annotations: { "k3s.io/internal-ip": n.ip, "k3s.io/hostname": n.name },
  };
}

export function nodeObject(n: NodeRecord, now = Date.now()): Record<string, unknown> {
  const ready = isReady(n, now);
  const since = new Date(ready ? (n.readyAt as number) : n.createdAt).toISOString().replace(/\.\d+Z$/, "Z");
  return {
    kind: "Node", apiVersion: "v1", metadata: metadata(n),
    spec: { podCIDR: "10.42.0.0/24", podCIDRs: ["10.42.0.0/24"], providerID: `k3s://${n.name}` },
    status: {
      conditions: [{
        type: "Ready", status: ready ? "True" : "False", lastHeartbeatTime: since, lastTransitionTime: since,
        reason: ready ? "KubeletReady" : "KubeletNotReady",
        message: ready ? "kubelet is posting ready status" : "container runtime network not ready",
      }],
      addresses: [{ type: "InternalIP", address: n.ip }, { type: "Hostname", address: n.name }],
      nodeInfo: {
        kubeletVersion: n.version, kubeProxyVersion: n.version, containerRuntimeVersion: "containerd://2.1.5-k3s1",
        operatingSystem: "linux", architecture: "amd64", osImage: "Debian GNU/Linux 12 (bookworm)",
      },
    },
  };
}

export function nodeList(nodes: NodeRecord[], now = Date.now()): Record<string, unknown> {
  return { kind: "NodeList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: nodes.map((n) => nodeObject(n, now)) };
}

const COLUMNS = [
  ["Name", "string", "name", 0], ["Status", "string", "", 0], ["Roles", "string", "", 0], ["Age", "string", "", 0],
  ["Version", "string", "", 0], ["Internal-IP", "string", "", 1],
] as const;

export function nodeTable(nodes: NodeRecord[], apiVersion: string, now = Date.now()): Record<string, unknown> {
  return {
    kind: "Table", apiVersion, metadata: { resourceVersion: "1" },
    columnDefinitions: COLUMNS.map(([name, type, format, priority]) => ({ name, type, format, description: "", priority })),
    rows: nodes.map((n) => ({
      cells: [n.name, isReady(n, now) ? "Ready" : "NotReady", roles(n), humanDuration(now - n.createdAt), n.version, n.ip],
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: metadata(n) },
    })),
  };
}
