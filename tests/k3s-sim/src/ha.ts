import * as fs from "node:fs";
import { request } from "./http-client";
import { caHashOf, ParsedToken } from "./tokens";
import type { TlsFiles } from "./pki";

// A server joining an existing cluster, first half: CA pinning as an agent does, then
// /v1-k3s/server-bootstrap with server credentials for the cluster CAs. The etcd membership follows in
// server.ts once this server has its own certificates.
export async function fetchBootstrap(serverUrl: string, token: ParsedToken, tls: TlsFiles): Promise<void> {
  const cacerts = (await request(`${serverUrl}/cacerts`)).body;
  if (token.caHash) {
    const srv = caHashOf(cacerts);
    if (srv !== token.caHash) throw new Error(`token CA hash does not match the Cluster CA certificate hash: ${token.caHash} != ${srv}`);
  }
  const r = await request(`${serverUrl}/v1-k3s/server-bootstrap`, { ca: cacerts, basic: { user: "server", password: token.password } });
  if (r.status === 401) throw new Error(`failed to get bootstrap data from ${serverUrl}: not authorized`);
  if (r.status !== 200) throw new Error(`failed to get bootstrap data from ${serverUrl}: HTTP ${r.status}`);
  const boot = JSON.parse(r.body.toString()) as { serverCA: { crt: string; key: string }; clientCA: { crt: string; key: string } };
  fs.mkdirSync(tls.dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(tls.serverCaCrt, boot.serverCA.crt);
  fs.writeFileSync(tls.serverCaKey, boot.serverCA.key, { mode: 0o600 });
  fs.writeFileSync(tls.clientCaCrt, boot.clientCA.crt);
  fs.writeFileSync(tls.clientCaKey, boot.clientCA.key, { mode: 0o600 });
}
