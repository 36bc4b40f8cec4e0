// The seven checks. Each throws StepFailure(final=true) when waiting cannot help, any other error to retry.
import { SshSession, HostKeyMismatch } from "./ssh-session";
import { request, caHashes, ApiResponse } from "./api-client";
import { parseToken, ParsedToken } from "./token";
import { StepFailure } from "./retry";

export interface StepContext {
  ssh: SshSession; host: string; apiPort: number; dataDir: string; nodeName?: string; root: boolean;
  expectedToken?: string; commandTimeoutMs: number;
  token?: string; agentToken?: string; parsed?: ParsedToken; ca?: string; caHash?: string;
}

function sq(s: string): string { return "'" + s.replace(/'/g, "'\\''") + "'"; }
function asRoot(ctx: StepContext, cmd: string): string { return ctx.root ? cmd : `sudo -n ${cmd}`; }

// sudo's refusals do not change by waiting (its warnings, e.g. an unresolvable host name, are not refusals).
const SUDO_REFUSED = /^sudo: (a password is required|a terminal is required|.*is not in the sudoers file|.*is not allowed to (execute|run)|.*may not run sudo)/;
function failIfSudoRefused(ctx: StepContext, r: { code: number; stderr: string }, what: string): void {
  if (ctx.root || r.code === 0) return;
  const line = r.stderr.split("\n").find((l) => SUDO_REFUSED.test(l));
  if (line) throw new StepFailure(`cannot ${what}: sudo -n refused (${line.trim()})`, true);
}

export async function sshConnectivity(ctx: StepContext): Promise<string> {
  try {
    await ctx.ssh.connect();
  } catch (err) {
    if (err instanceof HostKeyMismatch) throw new StepFailure(err.message, true);
    throw err;
  }
  return `connected, host key ${ctx.ssh.hostKeyFingerprint}`;
}

export async function serviceActive(ctx: StepContext): Promise<string> {
  const r = await ctx.ssh.exec("systemctl is-active k3s", ctx.commandTimeoutMs);
  const state = r.stdout.trim();
  if (state === "active") return "k3s is active";
  // With Restart=always a crashing k3s shows "activating (auto-restart)"; "failed" means systemd gave up.
  if (state === "failed") throw new StepFailure("k3s service failed (systemctl is-active k3s: failed)", true);
  throw new Error(`k3s service is ${state || "unknown"}`);
}

/** `kubectl -o jsonpath` that prints a Node's Ready condition: `True` once the node is Ready. */
export const NODE_READY_JSONPATH = `{.status.conditions[?(@.type=="Ready")].status}`;

export async function nodeReady(ctx: StepContext): Promise<string> {
  if (!ctx.nodeName) {
    const h = await ctx.ssh.exec("hostname", ctx.commandTimeoutMs);
    if (h.code !== 0 || !h.stdout.trim()) throw new Error("cannot read the server's hostname");
    ctx.nodeName = h.stdout.trim();
  }
  const r = await ctx.ssh.exec(asRoot(ctx, `k3s kubectl get node ${sq(ctx.nodeName)} -o jsonpath=${sq(NODE_READY_JSONPATH)}`), ctx.commandTimeoutMs);
  failIfSudoRefused(ctx, r, "run k3s kubectl");
  const status = r.stdout.trim();
  if (r.code === 0 && status === "True") return `node ${ctx.nodeName} is Ready`;
  throw new Error(`node ${ctx.nodeName} Ready=${status || "?"}${r.code !== 0 ? ` (${r.stderr.trim().split("\n")[0]})` : ""}`);
}

// The token travels only on the channel's stdout: the command line names the file, never its content.
async function readFile(ctx: StepContext, path: string): Promise<string | undefined> {
  const r = await ctx.ssh.exec(asRoot(ctx, `cat ${sq(path)}`), ctx.commandTimeoutMs);
  if (r.code !== 0) {
    failIfSudoRefused(ctx, r, `read ${path}`);
    return undefined;
  }
  return r.stdout.trim();
}

export async function tokenAvailable(ctx: StepContext): Promise<string> {
  const path = `${ctx.dataDir}/server/node-token`;
  const t = await readFile(ctx, path);
  if (!t) throw new Error(`${path} is missing or empty`);
  ctx.token = t;
  const a = await readFile(ctx, `${ctx.dataDir}/server/agent-token`);
  if (a && a !== t) ctx.agentToken = a;
  return `${path} present (${t.length} characters)${ctx.agentToken ? ", separate agent token" : ""}`;
}

export async function tokenFormat(ctx: StepContext): Promise<string> {
  let p: ParsedToken;
  try {
    p = parseToken(ctx.token ?? "");
  } catch (err) {
    throw new StepFailure(`token is not valid: ${(err as Error).message}`, true);
  }
  if (p.kind !== "secure" || !p.caHash) {
    throw new StepFailure(`token is not in the full K10<hash>::<user>:<password> form; a ${ctx.token?.length ?? 0}-character token carries no CA hash and cannot pin the cluster CA`, true);
  }
  ctx.parsed = p;
  if (ctx.agentToken) {
    const a = parseTokenFinal(ctx.agentToken, "agent token");
    if (a.caHash !== p.caHash) throw new StepFailure("agent token names a different cluster CA than the server token", true);
  }
  return `full form, CA hash ${p.caHash.slice(0, 12)}…, user ${p.username}`;
}

function parseTokenFinal(text: string, what: string): ParsedToken {
  try {
    const p = parseToken(text);
    if (p.kind === "short" || !p.caHash) throw new Error("no CA hash: cannot pin the cluster CA");
    return p;
  } catch (err) {
    throw new StepFailure(`${what} is not valid: ${(err as Error).message}`, true);
  }
}

async function api(ctx: StepContext, path: string, basic?: { user: string; password: string }, pinned = true): Promise<ApiResponse> {
  const ch = await ctx.ssh.forward(ctx.apiPort);
  return request(ch, { path, ca: pinned ? ctx.ca : undefined, sanHost: pinned ? ctx.host : undefined, basic, timeoutMs: ctx.commandTimeoutMs });
}

function authCheck(r: ApiResponse, what: string): void {
  if (r.status === 200) return;
  if (r.status === 401) throw new StepFailure(`${what}: 401 Unauthorized (wrong password)`, true);
  if (r.status === 403) throw new StepFailure(`${what}: 403 Forbidden (credentials not accepted for this role)`, true);
  throw new Error(`${what}: HTTP ${r.status}`);
}

export async function authentication(ctx: StepContext): Promise<string> {
  const p = ctx.parsed as ParsedToken;
  const cacerts = await api(ctx, "/cacerts", undefined, false);
  if (cacerts.status !== 200) throw new Error(`GET /cacerts: HTTP ${cacerts.status}`);
  const hashes = caHashes(cacerts.body);
  if (!hashes.includes(p.caHash as string)) {
    throw new StepFailure(`token CA hash does not match the Cluster CA certificate hash: ${p.caHash} != ${hashes[hashes.length - 1]} (wrong cluster or a man in the middle)`, true);
  }
  ctx.ca = cacerts.body.toString("latin1");
  ctx.caHash = p.caHash;
  if (ctx.expectedToken !== undefined) {
    const e = parseToken(ctx.expectedToken);
    if (e.caHash && e.caHash !== p.caHash) throw new StepFailure("the expected token names a different cluster CA than the server's", true);
    if (e.password !== p.password) throw new StepFailure("the server's token is not the expected token (passwords differ)", true);
  }
  try {
    authCheck(await api(ctx, "/v1-k3s/config", { user: "node", password: p.password }), "GET /v1-k3s/config as node");
    authCheck(await api(ctx, "/v1-k3s/encrypt/status", { user: "server", password: p.password }), "GET /v1-k3s/encrypt/status as server");
    if (ctx.agentToken) {
      const a = parseToken(ctx.agentToken);
      authCheck(await api(ctx, "/v1-k3s/config", { user: "node", password: a.password }), "agent token: GET /v1-k3s/config as node");
    }
  } catch (err) {
    if (err instanceof StepFailure) throw err;
    if (/certificate|altname|self.signed|verify/i.test((err as Error).message)) {
      throw new StepFailure(`TLS check against the pinned CA failed: ${(err as Error).message}`, true);
    }
    throw err;
  }
  return `CA pinned (sha256 ${p.caHash?.slice(0, 12)}…), node and server credentials accepted${ctx.agentToken ? ", agent token accepted" : ""}`;
}

export async function apiAccessible(ctx: StepContext): Promise<string> {
  const p = ctx.parsed as ParsedToken;
  const r = await api(ctx, "/v1-k3s/readyz", { user: "node", password: p.password });
  if (r.status === 200) return "GET /v1-k3s/readyz: 200 ok";
  if (r.status === 401 || r.status === 403) authCheck(r, "GET /v1-k3s/readyz");
  throw new Error(`GET /v1-k3s/readyz: HTTP ${r.status} ${r.body.toString("utf8").slice(0, 80).trim()}`);
}
