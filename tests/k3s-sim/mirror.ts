// A k3s release mirror for test nodes: serves the simulator as `/<release>/k3s` (and `/k3s`) over HTTP on
// the bridge address, as a download site or an air-gap mirror would. The Puppet module installs from it
// with `k3sBinaryUrl` + `k3sBinarySha256`.
//
//   tsx tests/k3s-sim/mirror.ts <host> <port>   serve until killed; prints the port once listening
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import { buildSimulator } from "./build";

export const DEFAULT_RELEASE = "v1.34.3+k3s1";

export interface Mirror {
  /** URL of a release's binary. */
  url(release?: string): string;
  sha256: string;
  close(): void;
}

export async function binaryDigest(): Promise<string> {
  return crypto.createHash("sha256").update(fs.readFileSync(await buildSimulator())).digest("hex");
}

export async function serveMirror(host: string, port = 0): Promise<Mirror> {
  const body = fs.readFileSync(await buildSimulator());
  const sha256 = crypto.createHash("sha256").update(body).digest("hex");
  const modified = new Date().toUTCString();
  const server = http.createServer((req, res) => {
    // Puppet asks for a file source's metadata with HEAD before it GETs it.
    if ((req.method !== "GET" && req.method !== "HEAD") || !/^(\/v[0-9][^/]*)?\/k3s$/.test(decodeURIComponent(req.url ?? ""))) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length, "last-modified": modified });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const bound = (server.address() as { port: number }).port;
  return {
    url: (release = DEFAULT_RELEASE) => `http://${host}:${bound}/${encodeURIComponent(release)}/k3s`,
    sha256,
    close: () => server.close(),
  };
}

if (require.main === module) {
  const [host, port] = process.argv.slice(2);
  serveMirror(host, Number(port ?? 0)).then(
    (m) => console.log(new URL(m.url()).port),
    (err: Error) => {
      console.error(`mirror: ${err.message}`);
      process.exit(1);
    },
  );
}
