import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as https from "node:https";
import * as crypto from "node:crypto";
import { loadConfig, SimConfig } from "./config";
import { guardedPod, loadKnobs, ms, releaseCommit } from "./knobs";
import { hostPath } from "./paths";
import { fatal, log } from "./log";
import { ensureCas, ensureLeaves, sanList, tlsFiles } from "./pki";
import { caHashOf, formatToken, newPassword, parseToken, ParsedToken, writeSecret } from "./tokens";
import { newMember, newState, TooManyLearners } from "./cluster-state";
import { Etcd, NoQuorum } from "./etcd";
import { fetchBootstrap } from "./ha";
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
      await st.etcd.propose({
        op: "register", guardedPod: guardedPod(st.knobs),
        node: {
          name: st.cfg.nodeName, ip: st.primaryIp, role: "server", version: st.knobs.version, labels: st.cfg.nodeLabel,
          createdAt: now, readyAt: st.knobs.faults.nodeNeverReady ? null : now + ms(st.knobs.nodeReadyDelay),
        },
      });
      return;
    } catch (e) {
      log("error", `Failed to register node ${st.cfg.nodeName}: ${(e as Error).message}; retrying in 2s`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

const sleepMs = (n: number) => new Promise((r) => setTimeout(r, n));

// A learner is promoted once it runs; in k3s the leader does it when the learner has caught up.
async function promoteSelf(etcd: Etcd, at: number, nodeName: string): Promise<void> {
  await sleepMs(Math.max(0, at - Date.now()));
  while (etcd.self()?.isLearner) {
    try {
      await etcd.propose({ op: "memberPromote", id: etcd.selfId });
    } catch (e) {
      if (!(e instanceof NoQuorum)) log("error", `etcd learner promotion: ${(e as Error).message}`);
      await sleepMs(300);
    }
  }
  if (etcd.self()) log("info", `etcd learner ${nodeName} promoted to voting member`);
}

// k3s starts its apiserver once etcd answers, and reconciles the bootstrap data (passwd included) with the
// datastore before it builds the authenticator: a token that is not the one the data is encrypted with is fatal.
async function reconcileWithDatastore(st: ServerState, startedWith: string): Promise<void> {
  let logged = false;
  while (!st.etcd.quorum().ok || st.etcd.self()?.isLearner !== false) {
    if (!logged && !st.etcd.removed) {
      const q = st.etcd.quorum();
      log("info", `Waiting for etcd server to become available: ${q.alive} of ${q.voters} voting members reachable, ${q.need} needed`);
      logged = true;
    }
    await sleepMs(200);
  }
  const b = st.etcd.state.bootstrap;
  if (startedWith !== b.serverPassword) {
    fatal("starting kubernetes: preparing server: failed to bootstrap cluster data: failed to reconcile with local datastore: " +
      "bootstrap data already found and encrypted with different token");
  }
  if (st.cfg.agentToken === undefined) st.agentPassword = b.agentPassword;
  fs.writeFileSync(st.passwdFile, JSON.stringify({ server: st.serverPassword, agent: st.agentPassword }), { mode: 0o600 });
}

export async function runServer(argv: string[]): Promise<void> {
  const knobs = loadKnobs();
  let cfg: SimConfig;
  try { cfg = loadConfig("server", argv); } catch (e) { return fatal((e as Error).message); }
  if (knobs.faults.exitAtStart !== undefined) fatal(`simulated start failure (exitAtStart=${knobs.faults.exitAtStart})`, knobs.faults.exitAtStart);
  const commit = releaseCommit(knobs.version);
  log("info", `Starting k3s ${knobs.version} (${commit})`);

  const dataDir = hostPath(cfg.dataDir);
  const serverDir = path.join(dataDir, "server");
  fs.mkdirSync(serverDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(serverDir, 0o700);
  const dbDir = path.join(serverDir, "db");
  const etcdDir = path.join(dbDir, "etcd");
  const credDir = path.join(serverDir, "cred");
  fs.mkdirSync(dbDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(credDir, { recursive: true, mode: 0o700 });
  const tls = tlsFiles(dataDir);
  const passwdFile = path.join(credDir, "passwd");

  const userToken = cfg.token !== undefined ? parseOrDie(cfg.token, "token") : undefined;
  const saved = readJson<{ server: string; agent: string }>(passwdFile);

  // A member removed from etcd left a tombstone: its data goes aside and it joins again, as k3s does.
  if (fs.existsSync(path.join(etcdDir, "tombstone"))) {
    log("info", "tombstone file has been detected, removing data dir to rejoin the cluster");
    fs.renameSync(etcdDir, `${etcdDir}-old-${Math.floor(Date.now() / 1000)}`);
  }
  // As k3s's IsInitialized: the etcd data, not the CA, says whether this server already belongs to a cluster.
  const initialized = fs.existsSync(Etcd.file(etcdDir));
  const joinUrl = !initialized && cfg.server && !cfg.clusterInit ? cfg.server : undefined;
  if (joinUrl) {
    if (!userToken) fatal("token: required when joining a server to a cluster (--server is set)");
    try {
      await fetchBootstrap(joinUrl, userToken, tls);
    } catch (e) {
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
  const agentToken = cfg.agentToken !== undefined ? parseOrDie(cfg.agentToken, "agent-token") : undefined;
  if (agentToken?.caHash && agentToken.caHash !== caHash) {
    fatal(`agent-token CA hash does not match the Cluster CA certificate hash: ${agentToken.caHash} != ${caHash}`);
  }

  const ip = primaryIp(cfg);
  const extraSans = [...cfg.tlsSan, ...cfg.nodeIp, ...(cfg.bindAddress && cfg.bindAddress !== "0.0.0.0" ? [cfg.bindAddress] : [])];
  await ensureLeaves(tls, sanList(cfg.nodeName, extraSans));
  const peerTls = { ca: cacerts, cert: fs.readFileSync(tls.adminCrt), key: fs.readFileSync(tls.adminKey) };
  const selfUrl = `https://${ip.includes(":") ? `[${ip}]` : ip}:${cfg.httpsListenPort}`;

  const serverPassword = userToken?.password ?? saved?.server ?? newPassword();
  let etcd: Etcd;
  let promoteAt: number | undefined;
  if (initialized) {
    etcd = Etcd.load(etcdDir, peerTls) ?? fatal(`${Etcd.file(etcdDir)}: unreadable etcd data`);
    log("info", "Managed etcd cluster bootstrap already complete and initialized");
    if (!etcd.self()) etcd.markRemoved();
    else if (etcd.self()?.isLearner) promoteAt = Date.now();
  } else if (joinUrl) {
    log("info", `Managed etcd cluster membership: joining via ${joinUrl}`);
    try {
      const joined = await Etcd.joinVia(joinUrl, { op: "memberAdd", node: cfg.nodeName, ip, url: selfUrl, learnerSeconds: knobs.etcdJoinDelay }, peerTls);
      etcd = new Etcd(etcdDir, joined.state, joined.member.id, peerTls);
      etcd.persist();
      promoteAt = Date.now() + ms(knobs.etcdJoinDelay);
    } catch (e) {
      if (e instanceof TooManyLearners) fatal(`ETCD join failed: ${e.message}`);
      return fatal(`starting kubernetes: preparing server: joining etcd cluster: ${(e as Error).message}`);
    }
  } else {
    const self = newMember(cfg.nodeName, ip, selfUrl, false);
    etcd = new Etcd(etcdDir, newState(self, serverPassword, agentToken?.password ?? saved?.agent ?? serverPassword), self.id, peerTls);
    etcd.persist();
    log("info", `Managed etcd cluster initializing: member ${self.name}`);
  }
  const agentPassword = agentToken?.password ?? (joinUrl ? etcd.state.bootstrap.agentPassword : saved?.agent ?? serverPassword);
  fs.writeFileSync(passwdFile, JSON.stringify({ server: serverPassword, agent: agentPassword }), { mode: 0o600 });

  const st: ServerState = {
    cfg, knobs, commit, tls, cacerts, caHash, serverPassword, agentPassword, passwdFile, serverDir, apiReady: false, etcd, primaryIp: ip,
  };

  const srv = https.createServer({
    cert: fs.readFileSync(tls.servingCrt), key: fs.readFileSync(tls.servingKey), ca: fs.readFileSync(tls.clientCaCrt),
    requestCert: true, rejectUnauthorized: false,
  }, safeHandler(st));
  await new Promise<void>((resolve) => {
    srv.once("error", (e: NodeJS.ErrnoException) => fatal(`listen tcp ${cfg.bindAddress ?? "0.0.0.0"}:${cfg.httpsListenPort}: ${e.code === "EADDRINUSE" ? "bind: address already in use" : e.message}`));
    srv.listen(cfg.httpsListenPort, cfg.bindAddress, () => resolve());
  });
  log("info", `Serving supervisor and kube-apiserver on https://${cfg.bindAddress ?? "0.0.0.0"}:${cfg.httpsListenPort}`);
  let tokenTimer: NodeJS.Timeout | undefined;
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.on(sig, () => {
      clearTimeout(tokenTimer);
      etcd.stop();
      log("info", `Received ${sig}, shutting down`);
      srv.close();
      process.exit(0);
    });
  }
  if (!etcd.removed) etcd.start();
  // A joining server goes on as any server once etcd has promoted it: its token and API come after that.
  if (promoteAt !== undefined) await promoteSelf(etcd, promoteAt, cfg.nodeName);

  tokenTimer = setTimeout(() => {
    writeTokenFiles(st, serverDir);
    writeKubeconfig(st);
  }, ms(knobs.tokenDelay));
  if (!knobs.faults.apiNeverReady) {
    setTimeout(() => {
      void reconcileWithDatastore(st, serverPassword).then(async () => {
        st.apiReady = true;
        log("info", "Kube API server is now running");
        await registerSelf(st);
        log("info", "k3s is up and running");
        await notifyReady();
      });
    }, ms(Math.max(knobs.apiReadyDelay, knobs.tokenDelay)) + 1);
  }
}
