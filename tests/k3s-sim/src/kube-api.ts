import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { ServerState } from "./state";
import { apiAvailable } from "./state";
import { readBody, sendJson, sendStatus, sendText } from "./status";
import { daemonSetObject, nodeList, nodeObject, nodeTable, podList, podObject, podTable } from "./kube-objects";
import type { ClusterState, OpResult, PodRecord } from "./cluster-state";
import { NoQuorum } from "./etcd";

export function isAdmin(req: IncomingMessage): boolean {
  const sock = req.socket as TLSSocket;
  if (!sock.authorized) return false;
  const cert = sock.getPeerCertificate();
  const org = cert?.subject?.O;
  return Array.isArray(org) ? org.includes("system:masters") : org === "system:masters";
}

function tableVersion(accept: string): string | undefined {
  if (!accept.includes("as=Table")) return undefined;
  return /as=Table;v=v1;g=meta\.k8s\.io/.test(accept) ? "meta.k8s.io/v1" : "meta.k8s.io/v1beta1";
}

// Legacy discovery, enough for a real kubectl to find nodes, pods, pods/eviction and daemonsets.
const CORE_RESOURCES = [
  { name: "nodes", singularName: "node", namespaced: false, kind: "Node", verbs: ["delete", "get", "list", "patch"], shortNames: ["no"] },
  { name: "pods", singularName: "pod", namespaced: true, kind: "Pod", verbs: ["delete", "get", "list"], shortNames: ["po"] },
  { name: "pods/eviction", singularName: "", namespaced: true, group: "policy", version: "v1", kind: "Eviction", verbs: ["create"] },
];
const GROUPS: Record<string, { kind: string; name: string; namespaced: boolean; verbs: string[]; singularName: string }[]> = {
  "apps/v1": [{ kind: "DaemonSet", name: "daemonsets", singularName: "daemonset", namespaced: true, verbs: ["get", "list"] }],
  "policy/v1": [{ kind: "PodDisruptionBudget", name: "poddisruptionbudgets", singularName: "poddisruptionbudget", namespaced: true, verbs: ["get", "list"] }],
};

// fieldSelector / labelSelector as kubectl and drain use them: a=b terms joined by commas.
function selectorTerms(raw: string | null): [string, string][] {
  if (!raw) return [];
  return raw.split(",").filter((t) => t !== "").map((t) => {
    const m = /^([^=!]+)==?(.*)$/.exec(t);
    if (!m) throw new Error(`unsupported selector term "${t}"`);
    return [m[1].trim(), m[2].trim()];
  });
}

const POD_FIELDS = new Set(["spec.nodeName", "metadata.name", "metadata.namespace", "status.phase"]);

function podField(p: PodRecord, key: string): string | undefined {
  switch (key) {
    case "spec.nodeName": return p.node ?? "";
    case "metadata.name": return p.name;
    case "metadata.namespace": return p.namespace;
    case "status.phase": return p.node ? "Running" : "Pending";
  }
  return undefined;
}

function respondOp(res: ServerResponse, r: OpResult, ok: () => void, kind: string): void {
  if (r.ok) return ok();
  if (r.reason === "NotFound") {
    const name = /"(.*)"/.exec(r.message)?.[1] ?? "";
    return sendStatus(res, 404, r.message, { name, kind });
  }
  return sendStatus(res, 429, "Cannot evict pod as it would violate the pod's disruption budget.",
    { causes: [{ reason: "DisruptionBudget", message: r.message }] });
}

// The kube-apiserver subset behind :6443, with anonymous auth off as k3s runs it.
export async function handleKube(req: IncomingMessage, res: ServerResponse, st: ServerState): Promise<void> {
  if (!apiAvailable(st)) return sendStatus(res, 503, "apiserver not ready");
  if (!isAdmin(req)) return sendStatus(res, 401, "Unauthorized");
  try {
    return await route(req, res, st);
  } catch (e) {
    // Quorum lost between the check above and the read or write.
    if (e instanceof NoQuorum) return sendStatus(res, 503, "apiserver not ready");
    throw e;
  }
}

async function route(req: IncomingMessage, res: ServerResponse, st: ServerState): Promise<void> {
  const url = new URL(req.url ?? "/", "https://x");
  const p = url.pathname.replace(/\/$/, "") || "/";
  const method = req.method ?? "GET";
  const version = st.knobs.version;
  const minor = /^v1\.(\d+)/.exec(version)?.[1] ?? "34";
  const table = tableVersion(String(req.headers.accept ?? ""));
  const now = Date.now();
  if (method === "GET") {
    switch (p) {
      case "/version":
        return sendJson(res, 200, {
          major: "1", minor, gitVersion: version, gitCommit: st.commit, gitTreeState: "clean",
          buildDate: "2025-01-01T00:00:00Z", goVersion: "go1.24.11", compiler: "gc", platform: "linux/amd64",
        });
      case "/readyz": case "/livez": case "/healthz":
        return sendText(res, 200, "ok");
      case "/api":
        return sendJson(res, 200, {
          kind: "APIVersions", versions: ["v1"],
          serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: `${st.primaryIp}:${st.cfg.httpsListenPort}` }],
        });
      case "/apis":
        return sendJson(res, 200, {
          kind: "APIGroupList", apiVersion: "v1",
          groups: Object.keys(GROUPS).map((gv) => {
            const [name, v] = gv.split("/");
            return { name, versions: [{ groupVersion: gv, version: v }], preferredVersion: { groupVersion: gv, version: v } };
          }),
        });
      case "/api/v1":
        return sendJson(res, 200, { kind: "APIResourceList", groupVersion: "v1", resources: CORE_RESOURCES });
    }
    const gv = /^\/apis\/([^/]+\/[^/]+)$/.exec(p);
    if (gv && GROUPS[gv[1]]) return sendJson(res, 200, { kind: "APIResourceList", apiVersion: "v1", groupVersion: gv[1], resources: GROUPS[gv[1]] });
  }

  if (p === "/api/v1/nodes" && method === "GET") {
    const s = st.etcd.read();
    let nodes = s.nodes;
    for (const [k, v] of selectorTerms(url.searchParams.get("fieldSelector"))) {
      if (k !== "metadata.name") return sendStatus(res, 400, `field label not supported: ${k}`);
      nodes = nodes.filter((n) => n.name === v);
    }
    return sendJson(res, 200, table ? nodeTable(nodes, s.members, table, now) : nodeList(nodes, s.members, now));
  }
  const one = /^\/api\/v1\/nodes\/([^/]+)$/.exec(p);
  if (one) {
    const name = decodeURIComponent(one[1]);
    if (method === "GET") return sendNode(res, st.etcd.read(), name, table, now);
    if (method === "PATCH") {
      const patch = JSON.parse(await readBody(req)) as { spec?: { unschedulable?: boolean | null } };
      if (!patch.spec || !("unschedulable" in patch.spec)) return sendStatus(res, 422, "the simulator patches spec.unschedulable only");
      const r = await st.etcd.propose({ op: "setUnschedulable", name, unschedulable: patch.spec.unschedulable === true });
      return respondOp(res, r, () => sendNode(res, st.etcd.state, name, undefined, now), "nodes");
    }
    if (method === "DELETE") {
      const r = await st.etcd.propose({ op: "deleteNode", name });
      return respondOp(res, r, () => sendJson(res, 200, {
        kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, kind: "nodes" },
      }), "nodes");
    }
  }

  const pods = /^\/api\/v1(?:\/namespaces\/([^/]+))?\/pods$/.exec(p);
  if (pods && method === "GET") {
    const s = st.etcd.read();
    const ns = pods[1] ? decodeURIComponent(pods[1]) : undefined;
    let list = s.pods.filter((x) => ns === undefined || x.namespace === ns);
    for (const [k, v] of selectorTerms(url.searchParams.get("fieldSelector"))) {
      if (!POD_FIELDS.has(k)) return sendStatus(res, 400, `field label not supported: ${k}`);
      list = list.filter((x) => podField(x, k) === v);
    }
    list = [...list].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    return sendJson(res, 200, table ? podTable(list, table, now) : podList(list, now));
  }
  const pod = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/eviction)?$/.exec(p);
  if (pod) {
    const [ns, name] = [decodeURIComponent(pod[1]), decodeURIComponent(pod[2])];
    if (pod[3] && method === "POST") {
      await readBody(req);
      const r = await st.etcd.propose({ op: "evict", namespace: ns, name });
      return respondOp(res, r, () => sendJson(res, 201, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 }), "pods");
    }
    if (!pod[3] && method === "GET") {
      const found = st.etcd.read().pods.find((x) => x.namespace === ns && x.name === name);
      if (!found) return sendStatus(res, 404, `pods "${name}" not found`, { name, kind: "pods" });
      return sendJson(res, 200, table ? podTable([found], table, now) : podObject(found, now));
    }
    if (!pod[3] && method === "DELETE") {
      const r = await st.etcd.propose({ op: "deletePod", namespace: ns, name });
      return respondOp(res, r, () => sendJson(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, kind: "pods" } }), "pods");
    }
  }
  const ds = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/daemonsets\/([^/]+)$/.exec(p);
  if (ds && method === "GET") {
    const [ns, name] = [decodeURIComponent(ds[1]), decodeURIComponent(ds[2])];
    const owned = st.etcd.read().pods.filter((x) => x.ownerKind === "DaemonSet" && x.namespace === ns && x.ownerName === name);
    if (owned.length === 0) return sendStatus(res, 404, `daemonsets.apps "${name}" not found`, { name, group: "apps", kind: "daemonsets" });
    return sendJson(res, 200, daemonSetObject(ns, name, owned));
  }
  if (method !== "GET" && !one && !pod) return sendStatus(res, 405, "the server does not allow this method on the requested resource");
  return sendStatus(res, 404, "the server could not find the requested resource");
}

function sendNode(res: ServerResponse, s: ClusterState, name: string, table: string | undefined, now: number): void {
  const node = s.nodes.find((n) => n.name === name);
  if (!node) return sendStatus(res, 404, `nodes "${name}" not found`, { name, kind: "nodes" });
  const member = s.members.find((m) => m.node === name);
  return sendJson(res, 200, table ? nodeTable([node], s.members, table, now) : nodeObject(node, now, member));
}
