import * as fs from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServerState } from "./state";
import { sendJson, sendStatus, sendText } from "./status";
import { handleKube } from "./kube-api";
import { NodeRecord, TooManyLearners } from "./cluster-store";
import { log } from "./log";

type Group = "agent" | "server";

// k3s's passwd: user "server" (groups k3s:server and k3s:agent) and user "node" (k3s:agent). The server
// token also joins agents, so "node" accepts the server password too.
function authorize(req: IncomingMessage, st: ServerState, group: Group): 200 | 401 | 403 {
  const h = req.headers.authorization;
  if (!h || !h.startsWith("Basic ")) return 403;
  const decoded = Buffer.from(h.slice(6), "base64").toString();
  const colon = decoded.indexOf(":");
  if (colon < 0) return 401;
  const user = decoded.slice(0, colon);
  const pw = decoded.slice(colon + 1);
  let groups: Group[] = [];
  if (user === "server" && pw === st.serverPassword) groups = ["server", "agent"];
  else if (user === "node" && (pw === st.agentPassword || pw === st.serverPassword)) groups = ["agent"];
  else return 401;
  return groups.includes(group) ? 200 : 403;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString()));
    req.on("error", reject);
  });
}

function guard(req: IncomingMessage, res: ServerResponse, st: ServerState, group: Group): boolean {
  const code = authorize(req, st, group);
  if (code === 200) return true;
  sendStatus(res, code, code === 401 ? "not authorized" : "forbidden");
  return false;
}

export async function handle(req: IncomingMessage, res: ServerResponse, st: ServerState): Promise<void> {
  const p = new URL(req.url ?? "/", "https://x").pathname;
  const m = req.method ?? "GET";
  if (p === "/cacerts") return sendText(res, 200, st.cacerts.toString("latin1"));
  if (p === "/ping") return sendText(res, 200, "pong");
  if (!p.startsWith("/v1-k3s/")) return handleKube(req, res, st);

  switch (`${m} ${p}`) {
    case "GET /v1-k3s/config":
      if (!guard(req, res, st, "agent")) return;
      return sendJson(res, 200, {
        clusterDomain: "cluster.local", clusterDNS: "10.43.0.10", serviceCIDR: "10.43.0.0/16", clusterCIDR: "10.42.0.0/16",
        supervisorPort: st.cfg.httpsListenPort, egressSelectorMode: "agent", flannelBackend: "vxlan",
      });
    case "GET /v1-k3s/readyz":
      if (!guard(req, res, st, "agent")) return;
      return st.apiReady ? sendText(res, 200, "ok") : sendStatus(res, 503, "runtime core not ready");
    case "GET /v1-k3s/encrypt/status":
      if (!guard(req, res, st, "server")) return;
      return sendJson(res, 200, { Enable: false, Mode: "", Stage: "", ActiveKey: "" });
    case "GET /v1-k3s/server-bootstrap":
      if (!guard(req, res, st, "server")) return;
      return sendJson(res, 200, {
        serverCA: { crt: fs.readFileSync(st.tls.serverCaCrt, "utf8"), key: fs.readFileSync(st.tls.serverCaKey, "utf8") },
        clientCA: { crt: fs.readFileSync(st.tls.clientCaCrt, "utf8"), key: fs.readFileSync(st.tls.clientCaKey, "utf8") },
        agentPassword: st.agentPassword,
        storeUrl: st.storeUrl,
      });
    case "POST /v1-k3s/sim/register": {
      if (!guard(req, res, st, "agent")) return;
      if (!st.apiReady) return sendStatus(res, 503, "apiserver not ready");
      const body = JSON.parse(await readBody(req)) as { name: string; ip: string; version: string; labels?: string[] };
      const now = Date.now();
      const rec = await st.store.register({
        name: body.name, ip: body.ip, role: "agent", version: body.version, labels: body.labels ?? [],
        createdAt: now, readyAt: now + st.knobs.nodeReadyDelay * 1000,
      });
      return sendJson(res, 200, rec);
    }
    case "GET /v1-k3s/sim/nodes":
      if (!guard(req, res, st, "server")) return;
      return sendJson(res, 200, await st.store.list());
    case "POST /v1-k3s/sim/nodes":
      if (!guard(req, res, st, "server")) return;
      return sendJson(res, 200, await st.store.register(JSON.parse(await readBody(req)) as NodeRecord));
    case "POST /v1-k3s/sim/etcd-join": {
      if (!guard(req, res, st, "server")) return;
      const body = JSON.parse(await readBody(req)) as { name: string; delaySeconds: number };
      try {
        await st.store.etcdJoin(body.name, body.delaySeconds);
        return sendJson(res, 200, { ok: true });
      } catch (e) {
        if (e instanceof TooManyLearners) return sendStatus(res, 500, e.message);
        throw e;
      }
    }
  }
  return sendStatus(res, 404, "the server could not find the requested resource");
}

export function safeHandler(st: ServerState) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res, st).catch((e: Error) => {
      log("error", `${req.method} ${req.url}: ${e.message}`);
      if (!res.headersSent) sendStatus(res, 500, e.message);
    });
  };
}
