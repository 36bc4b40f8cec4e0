import * as crypto from "node:crypto";
import { log } from "./log";

// What etcd holds for a k3s cluster, reduced to what the simulator answers about: Node objects, a few pods,
// etcd's own member list and the bootstrap passwords. Only the etcd leader applies operations
// (applyOp); the other members receive the resulting state whole (etcd.ts).

export interface NodeRecord {
  name: string;
  ip: string;
  role: "server" | "agent";
  version: string;
  labels: string[];
  createdAt: number;
  readyAt: number | null;   // null: never Ready
  unschedulable?: boolean;
}

export interface PodRecord {
  namespace: string;
  name: string;
  uid: string;
  app: string;
  ownerKind: "ReplicaSet" | "DaemonSet";
  ownerName: string;
  node: string | null;      // null: Pending, no schedulable node
  ip: string | null;
  emptyDir: boolean;
  pdb?: string;             // a PodDisruptionBudget that allows no disruption protects it
  createdAt: number;
}

export interface Member {
  id: string;               // hexadecimal, as etcdctl prints member IDs
  name: string;             // <node name>-<8 hex>, as k3s names its etcd members
  node: string;
  ip: string;
  url: string;              // simulator: where this member's supervisor answers peer traffic
  isLearner: boolean;
  learnerUntil: number;     // a learner blocks other joins until then (etcd allows one learner at a time)
}

export interface ClusterState {
  rev: number;
  members: Member[];
  nodes: NodeRecord[];
  pods: PodRecord[];
  bootstrap: { serverPassword: string; agentPassword: string };
  systemPods: boolean;      // k3s's packaged components were deployed (on the first node that registered)
  seq: number;
}

export class TooManyLearners extends Error {
  constructor() { super("etcdserver: too many learner members in cluster"); }
}

export type Op =
  | { op: "register"; node: NodeRecord; guardedPod?: string }
  | { op: "deleteNode"; name: string }
  | { op: "setUnschedulable"; name: string; unschedulable: boolean }
  | { op: "evict"; namespace: string; name: string }
  | { op: "deletePod"; namespace: string; name: string }
  | { op: "memberAdd"; node: string; ip: string; url: string; learnerSeconds: number }
  | { op: "memberPromote"; id: string }
  | { op: "rotateToken"; serverPassword: string; agentPasswordFollows: boolean };

export type OpResult =
  | { ok: true; node?: NodeRecord; member?: Member }
  | { ok: false; reason: "NotFound" | "DisruptionBudget"; message: string };

export function newState(self: Member, serverPassword: string, agentPassword: string): ClusterState {
  return { rev: 1, members: [self], nodes: [], pods: [], bootstrap: { serverPassword, agentPassword }, systemPods: false, seq: 0 };
}

export function newMember(node: string, ip: string, url: string, isLearner: boolean, learnerSeconds = 0): Member {
  // Kept below 2^53 so the ID survives JSON as a number, as /db/info and etcdctl -w json print it.
  const id = (crypto.randomInt(2 ** 20, 2 ** 21) * 2 ** 32 + crypto.randomInt(0, 2 ** 32)).toString(16);
  return {
    id, name: `${node}-${crypto.randomBytes(4).toString("hex")}`, node, ip, url, isLearner,
    learnerUntil: isLearner ? Date.now() + learnerSeconds * 1000 : 0,
  };
}

// k3s's packaged components. metrics-server and traefik mount emptyDir volumes, which is why drain needs
// --delete-emptydir-data on a node that runs them.
const DEPLOYMENTS = [
  { app: "coredns", emptyDir: false },
  { app: "local-path-provisioner", emptyDir: false },
  { app: "metrics-server", emptyDir: true },
  { app: "traefik", emptyDir: true },
];
const SYSTEM_NS = "kube-system";
// The alphabet of Kubernetes' generated name suffixes (rand.String): no vowels, no ambiguous characters.
const ALNUM = "bcdfghjklmnpqrstvwxz2456789";

function suffix(n: number, seed?: string): string {
  const bytes = seed ? crypto.createHash("sha256").update(seed).digest() : crypto.randomBytes(n);
  return Array.from(bytes.subarray(0, n), (b) => ALNUM[b % ALNUM.length]).join("");
}

export const SVCLB_DS = `svclb-traefik-${crypto.createHash("sha256").update("traefik").digest("hex").slice(0, 8)}`;

function replicaSetOf(app: string): string {
  return `${app}-${suffix(10, app)}`;
}

function podUid(): string {
  return crypto.randomUUID();
}

function schedulable(st: ClusterState): NodeRecord[] {
  return st.nodes.filter((n) => !n.unschedulable);
}

// The scheduler's spread, reduced: the schedulable node with the fewest replica pods.
function pickNode(st: ClusterState): NodeRecord | undefined {
  const load = (n: NodeRecord) => st.pods.filter((p) => p.node === n.name && p.ownerKind === "ReplicaSet").length;
  return [...schedulable(st)].sort((a, b) => load(a) - load(b) || a.name.localeCompare(b.name))[0];
}

function podIp(st: ClusterState): string {
  st.seq++;
  return `10.42.${Math.floor(st.seq / 250) % 256}.${(st.seq % 250) + 2}`;
}

function addReplicaPod(st: ClusterState, ns: string, app: string, emptyDir: boolean, node: NodeRecord | undefined, pdb?: string): void {
  const rs = replicaSetOf(app);
  st.pods.push({
    namespace: ns, name: `${rs}-${suffix(5)}`, uid: podUid(), app, ownerKind: "ReplicaSet", ownerName: rs,
    node: node?.name ?? null, ip: node ? podIp(st) : null, emptyDir, pdb, createdAt: Date.now(),
  });
}

// A ReplicaSet replaces a pod that went away; the replacement waits Pending when no node takes it.
function replace(st: ClusterState, gone: PodRecord): void {
  if (gone.ownerKind !== "ReplicaSet") return;
  addReplicaPod(st, gone.namespace, gone.app, gone.emptyDir, pickNode(st), gone.pdb);
}

function schedulePending(st: ClusterState): void {
  for (const p of st.pods) {
    if (p.node !== null) continue;
    const n = pickNode(st);
    if (!n) return;
    p.node = n.name;
    p.ip = podIp(st);
  }
}

function ensurePods(st: ClusterState, node: NodeRecord, guardedPod?: string): void {
  if (!st.pods.some((p) => p.ownerKind === "DaemonSet" && p.node === node.name)) {
    st.pods.push({
      namespace: SYSTEM_NS, name: `${SVCLB_DS}-${suffix(5)}`, uid: podUid(), app: "svclb-traefik", ownerKind: "DaemonSet",
      ownerName: SVCLB_DS, node: node.name, ip: podIp(st), emptyDir: false, createdAt: Date.now(),
    });
  }
  if (!st.systemPods) {
    st.systemPods = true;
    for (const d of DEPLOYMENTS) addReplicaPod(st, SYSTEM_NS, d.app, d.emptyDir, node.unschedulable ? undefined : node);
  }
  if (guardedPod) {
    const [ns, app] = guardedPod.includes("/") ? guardedPod.split("/", 2) : ["default", guardedPod];
    if (!st.pods.some((p) => p.namespace === ns && p.app === app)) addReplicaPod(st, ns, app, false, node, app);
  }
  schedulePending(st);
}

function notFound(kind: string, name: string): OpResult {
  return { ok: false, reason: "NotFound", message: `${kind} "${name}" not found` };
}

function removeMemberOf(st: ClusterState, node: NodeRecord, alive: (m: Member) => boolean): void {
  const m = st.members.find((x) => x.node === node.name);
  if (!m) return;
  // k3s's managed etcd member removal controller, on the Node's deletion.
  log("info", `Removing etcd member ${node.name} from cluster`);
  const voters = st.members.filter((x) => !x.isLearner && x.id !== m.id);
  const need = Math.floor(voters.length / 2) + 1;
  if (voters.length === 0 || voters.filter(alive).length < need) {
    // etcd's strict reconfiguration check refuses a removal that leaves no quorum of started members.
    log("error", `Failed to remove etcd member ${m.name}: etcdserver: re-configuration failed due to not enough started members`);
    return;
  }
  log("info", `Removing name=${m.name} id=${parseInt(m.id, 16)} address=${m.ip} from etcd`);
  st.members = st.members.filter((x) => x.id !== m.id);
}

export function applyOp(st: ClusterState, op: Op, alive: (m: Member) => boolean): OpResult {
  switch (op.op) {
    case "register": {
      const prev = st.nodes.find((n) => n.name === op.node.name);
      // A restarted kubelet finds its Node and keeps it: creation time and cordon survive.
      const rec: NodeRecord = prev ? { ...op.node, createdAt: prev.createdAt, unschedulable: prev.unschedulable } : op.node;
      st.nodes = [...st.nodes.filter((n) => n.name !== rec.name), rec].sort((a, b) => a.name.localeCompare(b.name));
      log("info", `Node ${rec.name} (${rec.role}, ${rec.ip}) ${prev ? "re-registered" : "joined the cluster"}`);
      ensurePods(st, rec, op.guardedPod);
      return { ok: true, node: rec };
    }
    case "deleteNode": {
      const node = st.nodes.find((n) => n.name === op.name);
      if (!node) return notFound("nodes", op.name);
      st.nodes = st.nodes.filter((n) => n.name !== op.name);
      // The pod garbage collector deletes pods bound to a node that no longer exists.
      const orphans = st.pods.filter((p) => p.node === op.name);
      st.pods = st.pods.filter((p) => p.node !== op.name);
      for (const p of orphans) replace(st, p);
      if (node.role === "server") removeMemberOf(st, node, alive);
      log("info", `Node ${op.name} deleted`);
      return { ok: true, node };
    }
    case "setUnschedulable": {
      const node = st.nodes.find((n) => n.name === op.name);
      if (!node) return notFound("nodes", op.name);
      node.unschedulable = op.unschedulable || undefined;
      if (!op.unschedulable) schedulePending(st);
      return { ok: true, node };
    }
    case "evict": case "deletePod": {
      const pod = st.pods.find((p) => p.namespace === op.namespace && p.name === op.name);
      if (!pod) return notFound("pods", op.name);
      if (op.op === "evict" && pod.pdb) {
        return { ok: false, reason: "DisruptionBudget", message: `The disruption budget ${pod.pdb} needs 1 healthy pods and has 1 currently` };
      }
      st.pods = st.pods.filter((p) => p !== pod);
      replace(st, pod);
      return { ok: true };
    }
    case "memberAdd": {
      const now = Date.now();
      const blocking = st.members.find((m) => m.isLearner && m.learnerUntil > now && m.node !== op.node);
      if (blocking) {
        log("error", `etcd member ${op.node} rejected: learner ${blocking.node} is still being promoted`);
        throw new TooManyLearners();
      }
      // A server that lost its data dir and joins again replaces its old member.
      st.members = st.members.filter((m) => m.node !== op.node);
      const m = newMember(op.node, op.ip, op.url, true, op.learnerSeconds);
      st.members.push(m);
      log("info", `Adding etcd learner ${m.name} (${op.ip}); promotion in ${op.learnerSeconds}s`);
      return { ok: true, member: m };
    }
    case "memberPromote": {
      const m = st.members.find((x) => x.id === op.id);
      if (!m) return notFound("members", op.id);
      if (m.isLearner) log("info", `Promoted learner ${m.name}`);
      m.isLearner = false;
      m.learnerUntil = 0;
      return { ok: true, member: m };
    }
    case "rotateToken": {
      st.bootstrap.serverPassword = op.serverPassword;
      if (op.agentPasswordFollows) st.bootstrap.agentPassword = op.serverPassword;
      log("info", "Bootstrap data re-encrypted with the new server token");
      return { ok: true };
    }
  }
}
