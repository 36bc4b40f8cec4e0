import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { ServerState } from "./state";
import { sendJson, sendStatus, sendText } from "./status";
import { nodeList, nodeObject, nodeTable } from "./kube-objects";

function isAdmin(req: IncomingMessage): boolean {
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

// The kube-apiserver subset behind :6443, with anonymous auth off as k3s runs it.
export async function handleKube(req: IncomingMessage, res: ServerResponse, st: ServerState): Promise<void> {
  if (!st.apiReady) return sendStatus(res, 503, "apiserver not ready");
  if (!isAdmin(req)) return sendStatus(res, 401, "Unauthorized");
  const url = new URL(req.url ?? "/", "https://x");
  const p = url.pathname.replace(/\/$/, "") || "/";
  const version = st.knobs.version;
  const minor = /^v1\.(\d+)/.exec(version)?.[1] ?? "34";
  if (req.method !== "GET") return sendStatus(res, 405, "the server does not allow this method on the requested resource");
  switch (p) {
    case "/version":
      return sendJson(res, 200, {
        major: "1", minor, gitVersion: version, gitCommit: "simulator", gitTreeState: "clean",
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
      return sendJson(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups: [] });
    case "/api/v1":
      return sendJson(res, 200, {
        kind: "APIResourceList", groupVersion: "v1",
        resources: [{ name: "nodes", singularName: "node", namespaced: false, kind: "Node", verbs: ["get", "list"], shortNames: ["no"] }],
      });
  }
  const table = tableVersion(String(req.headers.accept ?? ""));
  if (p === "/api/v1/nodes") {
    const nodes = await st.store.list();
    return sendJson(res, 200, table ? nodeTable(nodes, table) : nodeList(nodes));
  }
  const one = /^\/api\/v1\/nodes\/([^/]+)$/.exec(p);
  if (one) {
    const name = decodeURIComponent(one[1]);
    const node = (await st.store.list()).find((n) => n.name === name);
    if (!node) return sendStatus(res, 404, `nodes "${name}" not found`, { name, kind: "nodes" });
    return sendJson(res, 200, table ? nodeTable([node], table) : nodeObject(node));
  }
  return sendStatus(res, 404, "the server could not find the requested resource");
}
