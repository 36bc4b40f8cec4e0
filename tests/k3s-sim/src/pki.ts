import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as crypto from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

// File names as k3s lays out server/tls.
export interface TlsFiles {
  dir: string;
  serverCaCrt: string; serverCaKey: string;
  clientCaCrt: string; clientCaKey: string;
  servingCrt: string; servingKey: string;
  adminCrt: string; adminKey: string;
}

export function tlsFiles(dataDir: string): TlsFiles {
  const dir = path.join(dataDir, "server", "tls");
  const f = (n: string) => path.join(dir, n);
  return {
    dir,
    serverCaCrt: f("server-ca.crt"), serverCaKey: f("server-ca.key"),
    clientCaCrt: f("client-ca.crt"), clientCaKey: f("client-ca.key"),
    servingCrt: f("serving-kube-apiserver.crt"), servingKey: f("serving-kube-apiserver.key"),
    adminCrt: f("client-admin.crt"), adminKey: f("client-admin.key"),
  };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args, { timeout: 30000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function makeCa(crt: string, key: string, cn: string): Promise<void> {
  await openssl(["req", "-x509", ...EC, "-keyout", key, "-out", crt, "-days", "3650",
    "-subj", `/CN=${cn}@${Math.floor(Date.now() / 1000)}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign"]);
  fs.chmodSync(key, 0o600);
}

async function makeLeaf(crt: string, key: string, caCrt: string, caKey: string, subj: string, ext: string): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-sim-pki-"));
  try {
    const csr = path.join(tmp, "req.csr");
    const extFile = path.join(tmp, "ext.cnf");
    fs.writeFileSync(extFile, ext);
    await openssl(["req", "-new", ...EC, "-keyout", key, "-out", csr, "-subj", subj]);
    fs.chmodSync(key, 0o600);
    await openssl(["x509", "-req", "-in", csr, "-CA", caCrt, "-CAkey", caKey, "-set_serial", `0x${crypto.randomBytes(8).toString("hex")}`,
      "-days", "365", "-out", crt, "-extfile", extFile]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export async function ensureCas(t: TlsFiles): Promise<void> {
  fs.mkdirSync(t.dir, { recursive: true, mode: 0o700 });
  const jobs: Promise<void>[] = [];
  if (!fs.existsSync(t.serverCaCrt)) jobs.push(makeCa(t.serverCaCrt, t.serverCaKey, "k3s-server-ca"));
  if (!fs.existsSync(t.clientCaCrt)) jobs.push(makeCa(t.clientCaCrt, t.clientCaKey, "k3s-client-ca"));
  await Promise.all(jobs);
}

export function sanList(nodeName: string, extra: string[]): string[] {
  const ips = new Set<string>(["127.0.0.1", "::1", "10.43.0.1"]);
  const dns = new Set<string>(["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", nodeName]);
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4") ips.add(a.address);
  }
  for (const x of extra) (/^[0-9.]+$/.test(x) || x.includes(":") ? ips : dns).add(x);
  return [...[...dns].map((d) => `DNS:${d}`), ...[...ips].map((i) => `IP:${i}`)];
}

// Generated at first start and reused, so a restart costs no openssl runs; regenerated when the SANs change.
export async function ensureLeaves(t: TlsFiles, sans: string[]): Promise<void> {
  const sanFile = `${t.servingCrt}.sans`;
  const want = sans.join(",");
  const jobs: Promise<void>[] = [];
  if (!fs.existsSync(t.servingCrt) || !fs.existsSync(sanFile) || fs.readFileSync(sanFile, "utf8") !== want) {
    jobs.push(makeLeaf(t.servingCrt, t.servingKey, t.serverCaCrt, t.serverCaKey, "/O=k3s/CN=k3s",
      `subjectAltName=${want}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`)
      .then(() => fs.writeFileSync(sanFile, want)));
  }
  if (!fs.existsSync(t.adminCrt)) {
    jobs.push(makeLeaf(t.adminCrt, t.adminKey, t.clientCaCrt, t.clientCaKey, "/O=system:masters/CN=system:admin",
      "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"));
  }
  await Promise.all(jobs);
}
