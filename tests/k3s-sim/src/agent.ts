import * as os from "node:os";
import { loadConfig, SimConfig } from "./config";
import { guardedPod, loadKnobs, Knobs, releaseCommit, sleep } from "./knobs";
import { fatal, log } from "./log";
import { request } from "./http-client";
import { caHashOf, parseToken } from "./tokens";
import { notifyReady } from "./notify";

class NotReady extends Error {}

// One join attempt, in the order a real agent checks: CA hash, pinned CA + SAN, then credentials.
async function joinOnce(cfg: SimConfig, knobs: Knobs, url: string, rawToken: string): Promise<void> {
  const token = parseToken(rawToken);
  const cacerts = (await request(`${url}/cacerts`)).body;
  if (token.caHash) {
    const srv = caHashOf(cacerts);
    if (srv !== token.caHash) throw new Error(`token CA hash does not match the Cluster CA certificate hash: ${token.caHash} != ${srv}`);
  }
  await request(`${url}/ping`, { ca: cacerts }).catch((e: Error) => {
    throw new Error(`failed to validate server certificate for ${url}: ${e.message}`);
  });
  const basic = { user: "node", password: token.password };
  const conf = await request(`${url}/v1-k3s/config`, { ca: cacerts, basic });
  if (conf.status === 401) throw new Error(`failed to get agent config: ${url}/v1-k3s/config: 401 Unauthorized`);
  if (conf.status !== 200) throw new NotReady(`${url}/v1-k3s/config: HTTP ${conf.status}`);
  await sleep(knobs.agentJoinDelay);
  const ip = cfg.nodeIp[0] ?? conf.localAddress ?? "127.0.0.1";
  const reg = await request(`${url}/v1-k3s/sim/register`, {
    method: "POST", ca: cacerts, basic,
    body: JSON.stringify({ name: cfg.nodeName, ip, version: knobs.version, labels: cfg.nodeLabel, guardedPod: guardedPod(knobs) }),
  });
  if (reg.status === 503) throw new NotReady("apiserver not ready");
  if (reg.status !== 200) throw new Error(`node registration failed: HTTP ${reg.status}`);
}

export async function runAgent(argv: string[]): Promise<void> {
  const knobs = loadKnobs();
  let cfg: SimConfig;
  try { cfg = loadConfig("agent", argv); } catch (e) { return fatal((e as Error).message); }
  if (knobs.faults.exitAtStart !== undefined) fatal(`simulated start failure (exitAtStart=${knobs.faults.exitAtStart})`, knobs.faults.exitAtStart);
  if (!cfg.server) fatal("server: --server (K3S_URL) is required for an agent");
  if (cfg.token === undefined) fatal("token: --token, --token-file, K3S_TOKEN or K3S_TOKEN_FILE is required for an agent");
  log("info", `Starting k3s agent ${knobs.version} (${releaseCommit(knobs.version)}) as ${cfg.nodeName || os.hostname()}`);
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => { log("info", `Received ${sig}, shutting down`); process.exit(0); });
  // A bad token never succeeds; like k3s the agent keeps retrying and stays "activating".
  for (;;) {
    try {
      await joinOnce(cfg, knobs, cfg.server as string, cfg.token as string);
      break;
    } catch (e) {
      if (e instanceof NotReady) log("info", `Waiting to retrieve agent configuration; server is not ready: ${e.message}`);
      else log("error", (e as Error).message);
      await sleep(knobs.retryInterval);
    }
  }
  log("info", `Node ${cfg.nodeName} registered with ${cfg.server}`);
  log("info", "k3s agent is up and running");
  await notifyReady();
  setInterval(() => undefined, 1 << 30);
}
