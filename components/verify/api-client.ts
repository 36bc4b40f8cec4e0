// HTTPS to the k3s supervisor over an SSH-forwarded channel: no port has to be open to the verifier, and the
// TLS session is still end-to-end with the server, pinned to the CA the token names.
import * as http from "http";
import * as tls from "tls";
import * as crypto from "crypto";
import type { Duplex } from "stream";

export interface ApiResponse { status: number; body: Buffer; }
export interface ApiRequest {
  path: string;
  ca?: string;           // pinned CA; absent = TLS verification off (only for the anonymous /cacerts fetch)
  sanHost?: string;      // address the server certificate must name
  basic?: { user: string; password: string };
  timeoutMs: number;
}

export function request(channel: Duplex, req: ApiRequest): Promise<ApiResponse> {
  return new Promise<ApiResponse>((resolve, reject) => {
    const socket = tls.connect({
      socket: channel,
      ca: req.ca,
      rejectUnauthorized: req.ca !== undefined,
      checkServerIdentity: (_h: string, cert: tls.PeerCertificate) =>
        req.sanHost ? tls.checkServerIdentity(req.sanHost, cert) : undefined,
    });
    const headers: Record<string, string> = { Host: "kubernetes", Connection: "close" };
    if (req.basic) {
      headers.Authorization = "Basic " + Buffer.from(`${req.basic.user}:${req.basic.password}`).toString("base64");
    }
    const r = http.request({ method: "GET", path: req.path, headers, createConnection: () => socket },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => { socket.destroy(); resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }); });
        res.on("error", reject);
      });
    r.setTimeout(req.timeoutMs, () => r.destroy(new Error(`no answer to ${req.path} within ${req.timeoutMs} ms`)));
    r.on("error", (err) => { socket.destroy(); reject(err); });
    r.end();
  });
}

// k3s's hash: sha256 of the served bytes for one certificate; for a bundle, of the root (last) cert's DER.
export function caHashes(body: Buffer): string[] {
  const out = [crypto.createHash("sha256").update(body).digest("hex")];
  const pems = body.toString("latin1").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length > 1) {
    const der = new crypto.X509Certificate(pems[pems.length - 1]).raw;
    out.push(crypto.createHash("sha256").update(der).digest("hex"));
  }
  return out;
}
