// A k3s release mirror for test nodes: serves the simulator as `/<release>/k3s` (and `/k3s`) over HTTP on
// the bridge address, as a download site or an air-gap mirror would. The Puppet module installs from it
// with `k3sBinaryUrl` + `k3sBinarySha256`.
//
// One build serves every release: the file for a release other than DEFAULT_RELEASE carries one extra line
// naming it (after the shebang and "use strict"), so `k3s --version` and the node's kubeletVersion report
// that release, and its sha256 differs per release. DEFAULT_RELEASE is served as the build itself, byte for
// byte, so `binaryDigest()` and `mirror.sha256` are the digest of dist/k3s as before.
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
  /** sha256 of DEFAULT_RELEASE's binary. */
  sha256: string;
  /** sha256 of a release's binary, for k3sBinarySha256. */
  digest(release?: string): string;
  close(): void;
}

const RELEASE_PATH = /^\/(v[0-9][^/]*)\/k3s$/;

/** The bytes served for a release. */
export function releaseBinary(build: Buffer, release = DEFAULT_RELEASE): Buffer {
  if (release === DEFAULT_RELEASE) return build;
  const text = build.toString("utf8");
  const m = /^#![^\n]*\n(?:"use strict";\n)?/.exec(text);
  if (!m) throw new Error("the simulator build does not start with a shebang");
  const stamp = `globalThis.K3S_SIM_RELEASE = ${JSON.stringify(release)};\n`;
  return Buffer.from(text.slice(0, m[0].length) + stamp + text.slice(m[0].length), "utf8");
}

const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

export async function binaryDigest(release = DEFAULT_RELEASE): Promise<string> {
  return sha256(releaseBinary(fs.readFileSync(await buildSimulator()), release));
}

export async function serveMirror(host: string, port = 0): Promise<Mirror> {
  const build = fs.readFileSync(await buildSimulator());
  const cache = new Map<string, { body: Buffer; sha256: string }>();
  const file = (release: string) => {
    let f = cache.get(release);
    if (!f) {
      const body = releaseBinary(build, release);
      f = { body, sha256: sha256(body) };
      cache.set(release, f);
    }
    return f;
  };
  const modified = new Date().toUTCString();
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(req.url ?? "");
    const m = RELEASE_PATH.exec(p);
    // Puppet asks for a file source's metadata with HEAD before it GETs it.
    if ((req.method !== "GET" && req.method !== "HEAD") || (!m && p !== "/k3s")) {
      res.writeHead(404).end();
      return;
    }
    const { body } = file(m ? m[1] : DEFAULT_RELEASE);
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
    sha256: file(DEFAULT_RELEASE).sha256,
    digest: (release = DEFAULT_RELEASE) => file(release).sha256,
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
