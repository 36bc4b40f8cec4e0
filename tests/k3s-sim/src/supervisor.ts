import * as fs from "node:fs";
import * as path from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServerState } from "./state";
import { apiAvailable } from "./state";
import { readBody, sendJson, sendStatus, sendText } from "./status";
import { handleKube, isAdmin } from "./kube-api";
import { ClusterState, NodeRecord, Op, TooManyLearners } from "./cluster-state";
import { NoQuorum } from "./etcd";
import { formatToken, newPassword, writeSecret } from "./tokens";
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

function guard(req: IncomingMessage, res: ServerResponse, st: ServerState, group: Group): boolean {
  const code = authorize(req, st, group);
  if (code === 200) return true;
  sendStatus(res, code, code === 401 ? "not authorized" : "forbidden");
  return false;
}

// etcd's member list as /db/info answers it (etcdserverpb.Member): numeric ID, isLearner only when true.
export function memberList(s: ClusterState): object {
  return {
    members: s.members.map((m) => ({
      ID: parseInt(m.id, 16), name: m.name, peerURLs: [`https://${m.ip}:2380`], clientURLs: [`https://${m.ip}:2379`],
      ...(m.isLearner ? { isLearner: true } : {}),
    })),
  };
}

async function rotateToken(req: IncomingMessage, res: ServerResponse, st: ServerState): Promise<void> {
  let body: { newToken?: string };
  try { body = JSON.parse(await readBody(req)) as { newToken?: string }; } catch (e) { return sendStatus(res, 400, (e as Error).message); }
  const newToken = body.newToken || newPassword();
  // As k3s's tokenRotate: the node password follows only when it was the server's and no agent-token is set.
  const bootstrap = st.etcd.read().bootstrap;
  const follows = st.cfg.agentToken === undefined && bootstrap.agentPassword === bootstrap.serverPassword;
  await st.etcd.propose({ op: "rotateToken", serverPassword: newToken, agentPasswordFollows: follows });
  const saved = JSON.parse(fs.readFileSync(st.passwdFile, "utf8")) as { server: string; agent: string };
  writeSecret(st.passwdFile, JSON.stringify({ server: newToken, agent: follows ? newToken : saved.agent }));
  writeSecret(path.join(st.serverDir, "token"), `${formatToken(st.caHash, "server", newToken)}\n`);
  log("info", "Server token rotated; servers authenticate with the new token once restarted");
  res.writeHead(200, { "content-length": 0 });
  res.end();
}

async function handleEtcdPeer(req: IncomingMessage, res: ServerResponse, st: ServerState, route: string): Promise<void> {
  switch (route) {
    case "GET /v1-k3s/sim/etcd/status":
      return sendJson(res, 200, { id: st.etcd.selfId, rev: st.etcd.state.rev, removed: st.etcd.removed });
    case "GET /v1-k3s/sim/etcd/state":
      return sendJson(res, 200, st.etcd.state);
    case "PUT /v1-k3s/sim/etcd/state":
      if (st.etcd.removed) return sendStatus(res, 410, "etcdserver: the member has been permanently removed from the cluster");
      st.etcd.adopt(JSON.parse(await readBody(req)) as ClusterState);
      return sendJson(res, 200, { rev: st.etcd.state.rev });
    case "POST /v1-k3s/sim/etcd/propose": {
      const op = JSON.parse(await readBody(req)) as Op;
      try {
        const result = await st.etcd.propose(op);
        return sendJson(res, 200, { result, state: st.etcd.state });
      } catch (e) {
        if (e instanceof TooManyLearners) return sendStatus(res, 500, e.message);
        if (e instanceof NoQuorum) return sendStatus(res, 503, e.message);
        throw e;
      }
    }
    case "GET /v1-k3s/sim/etcd/members": {
      const q = st.etcd.quorum();
      return sendJson(res, 200, {
        ...memberList(st.etcd.state), self: st.etcd.selfId, leader: st.etcd.leader()?.id ?? null, quorum: q.ok,
        alive: st.etcd.state.members.filter((m) => st.etcd.alive(m)).map((m) => m.id), rev: st.etcd.state.rev,
      });
    }
  }
  return sendStatus(res, 404, "the server could not find the requested resource");
}

export async function handle(req: IncomingMessage, res: ServerResponse, st: ServerState): Promise<void> {
  const p = new URL(req.url ?? "/", "https://x").pathname;
  const m = req.method ?? "GET";
  if (p === "/cacerts") return sendText(res, 200, st.cacerts.toString("latin1"));
  if (p === "/ping") return sendText(res, 200, "pong");
  if (p === "/db/info") {
    // IsLocalOrHasRole(k3s:server): loopback clients need no credentials.
    const client = req.socket.remoteAddress?.replace(/^::ffff:/, "");
    if (client !== "127.0.0.1" && client !== "::1" && !guard(req, res, st, "server")) return;
    return sendJson(res, 200, memberList(st.etcd.state));
  }
  if (p.startsWith("/v1-k3s/sim/etcd/")) {
    // etcd peer and client traffic: the cluster's client certificates, not the join token.
    if (!isAdmin(req)) return sendStatus(res, 401, "Unauthorized");
    return handleEtcdPeer(req, res, st, `${m} ${p}`);
  }
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
      return apiAvailable(st) ? sendText(res, 200, "ok") : sendStatus(res, 503, "runtime core not ready");
    case "GET /v1-k3s/encrypt/status":
      if (!guard(req, res, st, "server")) return;
      return sendJson(res, 200, { Enable: false, Mode: "", Stage: "", ActiveKey: "" });
    case "GET /v1-k3s/server-bootstrap":
      if (!guard(req, res, st, "server")) return;
      return sendJson(res, 200, {
        serverCA: { crt: fs.readFileSync(st.tls.serverCaCrt, "utf8"), key: fs.readFileSync(st.tls.serverCaKey, "utf8") },
        clientCA: { crt: fs.readFileSync(st.tls.clientCaCrt, "utf8"), key: fs.readFileSync(st.tls.clientCaKey, "utf8") },
      });
    case "PUT /v1-k3s/token":
      if (!guard(req, res, st, "server")) return;
      return rotateToken(req, res, st);
    case "POST /v1-k3s/sim/register": {
      if (!guard(req, res, st, "agent")) return;
      if (!apiAvailable(st)) return sendStatus(res, 503, "apiserver not ready");
      const body = JSON.parse(await readBody(req)) as { name: string; ip: string; version: string; labels?: string[]; guardedPod?: string };
      const now = Date.now();
      const node: NodeRecord = {
        name: body.name, ip: body.ip, role: "agent", version: body.version, labels: body.labels ?? [],
        createdAt: now, readyAt: now + st.knobs.nodeReadyDelay * 1000,
      };
      const r = await st.etcd.propose({ op: "register", node, guardedPod: body.guardedPod });
      return sendJson(res, 200, r.ok ? r.node : r);
    }
  }
  if (p === "/v1-k3s/token") return sendStatus(res, 405, "method not allowed");
  return sendStatus(res, 404, "the server could not find the requested resource");
}

export function safeHandler(st: ServerState) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res, st).catch((e: Error) => {
      if (e instanceof NoQuorum) {
        if (!res.headersSent) sendStatus(res, 503, "apiserver not ready");
        return;
      }
      log("error", `${req.method} ${req.url}: ${e.message}`);
      if (!res.headersSent) sendStatus(res, 500, e.message);
    });
  };
}
