import * as crypto from "node:crypto";
import type { Member, NodeRecord, PodRecord } from "./cluster-state";

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

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

// A re-created object is a new object: the uid changes with the creation time, as the apiserver's would.
function uid(...parts: (string | number)[]): string {
  return crypto.createHash("sha256").update(parts.join("/")).digest("hex").replace(/^(.{8})(.{4})(.{4})(.{4})(.{12}).*$/, "$1-$2-$3-$4-$5");
}

function metadata(n: NodeRecord, member?: Member): Record<string, unknown> {
  const annotations: Record<string, string> = { "k3s.io/internal-ip": n.ip, "k3s.io/hostname": n.name };
  // What k3s's etcd controllers record on a server's Node; the member removal controller reads them.
  if (member) {
    annotations["etcd.k3s.cattle.io/node-name"] = member.name;
    annotations["etcd.k3s.cattle.io/node-address"] = member.ip;
  }
  return {
    name: n.name,
    uid: uid(n.name, n.createdAt),
    resourceVersion: String(n.createdAt % 1000000),
    creationTimestamp: iso(n.createdAt),
    labels: nodeLabels(n),
    annotations,
  };
}

export function nodeStatus(n: NodeRecord, now = Date.now()): string {
  return `${isReady(n, now) ? "Ready" : "NotReady"}${n.unschedulable ? ",SchedulingDisabled" : ""}`;
}

export function nodeObject(n: NodeRecord, now = Date.now(), member?: Member): Record<string, unknown> {
  const ready = isReady(n, now);
  const since = iso(ready ? (n.readyAt as number) : n.createdAt);
  const spec: Record<string, unknown> = { podCIDR: "10.42.0.0/24", podCIDRs: ["10.42.0.0/24"], providerID: `k3s://${n.name}` };
  if (n.unschedulable) {
    spec.unschedulable = true;
    // The node lifecycle controller mirrors spec.unschedulable as this taint.
    spec.taints = [{ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule", timeAdded: iso(now) }];
  }
  return {
    kind: "Node", apiVersion: "v1", metadata: metadata(n, member),
    spec,
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

const memberOf = (members: Member[], n: NodeRecord) => members.find((m) => m.node === n.name);

export function nodeList(nodes: NodeRecord[], members: Member[], now = Date.now()): Record<string, unknown> {
  return { kind: "NodeList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: nodes.map((n) => nodeObject(n, now, memberOf(members, n))) };
}

const COLUMNS = [
  ["Name", "string", "name", 0], ["Status", "string", "", 0], ["Roles", "string", "", 0], ["Age", "string", "", 0],
  ["Version", "string", "", 0], ["Internal-IP", "string", "", 1],
] as const;

export function nodeTable(nodes: NodeRecord[], members: Member[], apiVersion: string, now = Date.now()): Record<string, unknown> {
  return {
    kind: "Table", apiVersion, metadata: { resourceVersion: "1" },
    columnDefinitions: COLUMNS.map(([name, type, format, priority]) => ({ name, type, format, description: "", priority })),
    rows: nodes.map((n) => ({
      cells: [n.name, nodeStatus(n, now), roles(n), humanDuration(now - n.createdAt), n.version, n.ip],
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: metadata(n, memberOf(members, n)) },
    })),
  };
}

function podMetadata(p: PodRecord): Record<string, unknown> {
  const labels: Record<string, string> = p.ownerKind === "DaemonSet"
    ? { app: p.app, "controller-revision-hash": "1", "pod-template-generation": "1" }
    : { "k8s-app": p.app, "pod-template-hash": p.ownerName.slice(p.app.length + 1) };
  return {
    name: p.name, namespace: p.namespace, uid: p.uid, resourceVersion: String(p.createdAt % 1000000),
    creationTimestamp: iso(p.createdAt), labels,
    ownerReferences: [{
      apiVersion: "apps/v1", kind: p.ownerKind, name: p.ownerName, uid: uid(p.namespace, p.ownerName), controller: true, blockOwnerDeletion: true,
    }],
  };
}

export function podObject(p: PodRecord, now = Date.now()): Record<string, unknown> {
  const running = p.node !== null;
  return {
    kind: "Pod", apiVersion: "v1", metadata: podMetadata(p),
    spec: {
      ...(p.node ? { nodeName: p.node } : {}),
      containers: [{ name: p.app, image: `rancher/mirrored-${p.app}:latest` }],
      volumes: p.emptyDir ? [{ name: "tmp-dir", emptyDir: {} }] : [],
      terminationGracePeriodSeconds: 30,
    },
    status: running
      ? {
        phase: "Running", podIP: p.ip, podIPs: [{ ip: p.ip }], startTime: iso(p.createdAt),
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: iso(p.createdAt) }],
        containerStatuses: [{ name: p.app, ready: true, restartCount: 0, started: true, state: { running: { startedAt: iso(p.createdAt) } } }],
      }
      : {
        phase: "Pending",
        conditions: [{
          type: "PodScheduled", status: "False", reason: "Unschedulable", lastTransitionTime: iso(now),
          message: "0/1 nodes are available: 1 node(s) were unschedulable.",
        }],
      },
  };
}

export function podList(pods: PodRecord[], now = Date.now()): Record<string, unknown> {
  return { kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: pods.map((p) => podObject(p, now)) };
}

const POD_COLUMNS = [
  ["Name", "string", "name", 0], ["Ready", "string", "", 0], ["Status", "string", "", 0], ["Restarts", "string", "", 0],
  ["Age", "string", "", 0], ["IP", "string", "", 1], ["Node", "string", "", 1], ["Nominated Node", "string", "", 1],
  ["Readiness Gates", "string", "", 1],
] as const;

export function podTable(pods: PodRecord[], apiVersion: string, now = Date.now()): Record<string, unknown> {
  return {
    kind: "Table", apiVersion, metadata: { resourceVersion: "1" },
    columnDefinitions: POD_COLUMNS.map(([name, type, format, priority]) => ({ name, type, format, description: "", priority })),
    rows: pods.map((p) => ({
      cells: [p.name, p.node ? "1/1" : "0/1", p.node ? "Running" : "Pending", "0", humanDuration(now - p.createdAt),
        p.ip ?? "<none>", p.node ?? "<none>", "<none>", "<none>"],
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: podMetadata(p) },
    })),
  };
}

export function daemonSetObject(namespace: string, name: string, pods: PodRecord[]): Record<string, unknown> {
  const n = pods.length;
  return {
    kind: "DaemonSet", apiVersion: "apps/v1",
    metadata: { name, namespace, uid: uid(namespace, name), labels: { "svccontroller.k3s.cattle.io/svcname": "traefik" } },
    spec: { selector: { matchLabels: { app: name } } },
    status: { currentNumberScheduled: n, desiredNumberScheduled: n, numberAvailable: n, numberMisscheduled: 0, numberReady: n, updatedNumberScheduled: n },
  };
}
