import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as https from "node:https";
import * as crypto from "node:crypto";
import { loadConfig, SimConfig } from "./config";
import { loadKnobs, ms } from "./knobs";
import { hostPath } from "./paths";
import { fatal, log } from "./log";
import { ensureCas, ensureLeaves, sanList, tlsFiles } from "./pki";
import { caHashOf, formatToken, newPassword, parseToken, ParsedToken } from "./tokens";
import { ClusterStore, LocalStore, RemoteStore, TooManyLearners } from "./cluster-store";
import { joinCluster } from "./ha";
import { safeHandler } from "./supervisor";
import { notifyReady } from "./notify";
import type { ServerState } from "./state";
import { writeKubeconfig } from "./kubeconfig";

function primaryIp(cfg: SimConfig): string {
  if (cfg.nodeIp[0]) return cfg.nodeIp[0];
  if (cfg.bindAddress && cfg.bindAddress !== "0.0.0.0") return cfg.bindAddress;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

function readJson<T>(file: string): T | undefined {
  try { return JSON.parse(fs.readFileSync(file, "utf8")) as T; } catch { return undefined; }
}

function writeSecret(file: string, content: string): void {
  const tmp = `${file}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

function symlink(target: string, link: string): void {
  fs.rmSync(link, { force: true });
  fs.symlinkSync(target, link);
}

function parseOrDie(raw: string, setting: string): ParsedToken {
  try { return parseToken(raw); } catch (e) { return fatal(`failed to parse ${setting}: ${(e as Error).message}`); }
}

function writeTokenFiles(st: ServerState, serverDir: string): void {
  const { faults } = st.knobs;
  if (faults.noToken) return;
  const hash = faults.caMismatch ? crypto.randomBytes(32).toString("hex") : st.caHash;
  const tokenFile = path.join(serverDir, "token");
  if (faults.malformedToken !== undefined) writeSecret(tokenFile, faults.malformedToken);
  else writeSecret(tokenFile, `${formatToken(hash, "server", faults.wrongPassword ? newPassword() : st.serverPassword)}\n`);
  symlink(tokenFile, path.join(serverDir, "node-token"));
  const agentTokenFile = path.join(serverDir, "agent-token");
  if (st.cfg.agentToken) {
    fs.rmSync(agentTokenFile, { force: true });
    writeSecret(agentTokenFile, `${formatToken(hash, "node", faults.wrongPassword ? newPassword() : st.agentPassword)}\n`);
  } else symlink(tokenFile, agentTokenFile);
  const url = `https://${st.primaryIp}:${st.cfg.httpsListenPort}`;
  log("info", `Server node token is available at ${st.cfg.dataDir}/server/token`);
  log("info", `To join server node to cluster: k3s server -s ${url} -t \${SERVER_NODE_TOKEN}`);
  log("info", `Agent node token is available at ${st.cfg.dataDir}/server/agent-token`);
  log("info", `To join agent node to cluster: k3s agent -s ${url} -t \${AGENT_NODE_TOKEN}`);
}

async function registerSelf(st: ServerState): Promise<void> {
  const now = Date.now();
  for (;;) {
    try {
      await st.store.register({
        name: st.cfg.nodeName, ip: st.primaryIp, role: "server", version: st.knobs.version, labels: st.cfg.nodeLabel,
        createdAt: now, readyAt: st.knobs.faults.nodeNeverReady ? null : now + ms(st.knobs.nodeReadyDelay),
      });
      return;
    } catch (e) {
      log("error", `Failed to register node ${st.cfg.nodeName}: ${(e as Error).message}; retrying in 2s`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

export async function runServer(argv: string[]): Promise<void> {
  const knobs = loadKnobs();
  let cfg: SimConfig;
  try { cfg = loadConfig("server", argv); } catch (e) { return fatal((e as Error).message); }
  if (knobs.faults.exitAtStart !== undefined) fatal(`simulated start failure (exitAtStart=${knobs.faults.exitAtStart})`, knobs.faults.exitAtStart);
  log("info", `Starting k3s ${knobs.version} (simulator)`);

  const dataDir = hostPath(cfg.dataDir);
  const serverDir = path.join(dataDir, "server");
  fs.mkdirSync(serverDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(serverDir, 0o700);
  const dbDir = path.join(serverDir, "db");
  const credDir = path.join(serverDir, "cred");
  fs.mkdirSync(dbDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(credDir, { recursive: true, mode: 0o700 });
  const tls = tlsFiles(dataDir);
  const storeFile = path.join(dbDir, "sim-store.json");
  const passwdFile = path.join(credDir, "passwd");

  const userToken = cfg.token !== undefined ? parseOrDie(cfg.token, "token") : undefined;
  const saved = readJson<{ server: string; agent: string }>(passwdFile);
  let storeUrl = readJson<{ storeUrl: string }>(storeFile)?.storeUrl;
  let joinedAgentPassword: string | undefined;

  if (cfg.server && !cfg.clusterInit && !fs.existsSync(tls.serverCaCrt)) {
    if (!userToken) fatal("token: required when joining a server to a cluster (--server is set)");
    try {
      const boot = await joinCluster(cfg.server, userToken, cfg.nodeName, tls, knobs);
      storeUrl = boot.storeUrl;
      joinedAgentPassword = boot.agentPassword;
      fs.writeFileSync(storeFile, JSON.stringify({ storeUrl }), { mode: 0o600 });
    } catch (e) {
      if (e instanceof TooManyLearners) fatal(`ETCD join failed: ${e.message}`);
      fatal(`starting kubernetes: preparing server: ${(e as Error).message}`);
    }
  } else {
    await ensureCas(tls);
  }

  const cacerts = fs.readFileSync(tls.serverCaCrt);
  const caHash = caHashOf(cacerts);
  if (userToken?.caHash && userToken.caHash !== caHash) {
    fatal(`token CA hash does not match the Cluster CA certificate hash: ${userToken.caHash} != ${caHash}`);
  }
  const serverPassword = userToken?.password ?? saved?.server ?? newPassword();
  // A joined server takes the cluster's agent password from the bootstrap data (kept across restarts).
  let agentPassword = joinedAgentPassword ?? (storeUrl && saved ? saved.agent : serverPassword);
  if (cfg.agentToken !== undefined) {
    const at = parseOrDie(cfg.agentToken, "agent-token");
    if (at.caHash && at.caHash !== caHash) fatal(`agent-token CA hash does not match the Cluster CA certificate hash: ${at.caHash} != ${caHash}`);
    agentPassword = at.password;
  }
  fs.writeFileSync(passwdFile, JSON.stringify({ server: serverPassword, agent: agentPassword }), { mode: 0o600 });

  const ip = primaryIp(cfg);
  const extraSans = [...cfg.tlsSan, ...cfg.nodeIp, ...(cfg.bindAddress && cfg.bindAddress !== "0.0.0.0" ? [cfg.bindAddress] : [])];
  await ensureLeaves(tls, sanList(cfg.nodeName, extraSans));

  const store: ClusterStore = storeUrl
    ? new RemoteStore(storeUrl, cacerts.toString(), serverPassword)
    : new LocalStore(path.join(dbDir, "sim-nodes.json"));
  const st: ServerState = { cfg, knobs, tls, cacerts, caHash, serverPassword, agentPassword, apiReady: false, store, storeUrl, primaryIp: ip };

  const srv = https.createServer({
    cert: fs.readFileSync(tls.servingCrt), key: fs.readFileSync(tls.servingKey), ca: fs.readFileSync(tls.clientCaCrt),
    requestCert: true, rejectUnauthorized: false,
  }, safeHandler(st));
  await new Promise<void>((resolve) => {
    srv.once("error", (e: NodeJS.ErrnoException) => fatal(`listen tcp ${cfg.bindAddress ?? "0.0.0.0"}:${cfg.httpsListenPort}: ${e.code === "EADDRINUSE" ? "bind: address already in use" : e.message}`));
    srv.listen(cfg.httpsListenPort, cfg.bindAddress, () => resolve());
  });
  log("info", `Serving supervisor and kube-apiserver on https://${cfg.bindAddress ?? "0.0.0.0"}:${cfg.httpsListenPort}`);

  const tokenTimer = setTimeout(() => {
    writeTokenFiles(st, serverDir);
    writeKubeconfig(st);
  }, ms(knobs.tokenDelay));
  if (!knobs.faults.apiNeverReady) {
    setTimeout(() => {
      st.apiReady = true;
      log("info", "Kube API server is now running");
      void registerSelf(st).then(async () => {
        log("info", "k3s is up and running");
        await notifyReady();
      });
    }, ms(Math.max(knobs.apiReadyDelay, knobs.tokenDelay)) + 1);
  }
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.on(sig, () => {
      clearTimeout(tokenTimer);
      log("info", `Received ${sig}, shutting down`);
      srv.close();
      process.exit(0);
    });
  }
}
