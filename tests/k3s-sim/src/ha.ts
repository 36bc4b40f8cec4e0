import * as fs from "node:fs";
import { request } from "./http-client";
import { caHashOf, ParsedToken } from "./tokens";
import { RemoteStore } from "./cluster-store";
import type { TlsFiles } from "./pki";
import type { Knobs } from "./knobs";
import { log } from "./log";

export interface Bootstrap { agentPassword: string; storeUrl: string; }

// A server joining an existing cluster: CA pinning as an agent does, then /v1-k3s/server-bootstrap with
// server credentials (shares the CAs), then one etcd learner at a time.
export async function joinCluster(serverUrl: string, token: ParsedToken, nodeName: string, tls: TlsFiles, knobs: Knobs): Promise<Bootstrap> {
  const cacerts = (await request(`${serverUrl}/cacerts`)).body;
  if (token.caHash) {
    const srv = caHashOf(cacerts);
    if (srv !== token.caHash) throw new Error(`token CA hash does not match the Cluster CA certificate hash: ${token.caHash} != ${srv}`);
  }
  const r = await request(`${serverUrl}/v1-k3s/server-bootstrap`, { ca: cacerts, basic: { user: "server", password: token.password } });
  if (r.status === 401) throw new Error(`failed to get bootstrap data from ${serverUrl}: not authorized`);
  if (r.status !== 200) throw new Error(`failed to get bootstrap data from ${serverUrl}: HTTP ${r.status}`);
  const boot = JSON.parse(r.body.toString()) as {
    serverCA: { crt: string; key: string }; clientCA: { crt: string; key: string }; agentPassword: string; storeUrl?: string;
  };
  const storeUrl = boot.storeUrl ?? serverUrl;
  log("info", `Managed etcd cluster membership: joining via ${storeUrl}`);
  await new RemoteStore(storeUrl, cacerts.toString(), token.password).etcdJoin(nodeName, knobs.etcdJoinDelay);
  await new Promise((res) => setTimeout(res, knobs.etcdJoinDelay * 1000));
  fs.mkdirSync(tls.dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(tls.serverCaCrt, boot.serverCA.crt);
  fs.writeFileSync(tls.serverCaKey, boot.serverCA.key, { mode: 0o600 });
  fs.writeFileSync(tls.clientCaCrt, boot.clientCA.crt);
  fs.writeFileSync(tls.clientCaKey, boot.clientCA.key, { mode: 0o600 });
  log("info", `etcd learner ${nodeName} promoted to voting member`);
  return { agentPassword: boot.agentPassword, storeUrl };
}
