import * as fs from "node:fs";
import * as path from "node:path";
import { request } from "./http-client";
import { hostPath } from "./paths";
import { caHashOf, parseToken } from "./tokens";
import { log } from "./log";

// `k3s token rotate`, as pkg/cli/token does it: the server's own CA-pinned client, PUT /v1-k3s/token with
// server credentials, then a one-second wait for the datastore to propagate.
// Flags: --token/-t ($K3S_TOKEN; default: the server token file), --new-token (no environment variable;
// empty: the server generates one), --server/-s ($K3S_URL, default https://127.0.0.1:6443), --data-dir/-d.
const VALUE_FLAGS: Record<string, string> = {
  token: "token", t: "token", "new-token": "newToken", server: "server", s: "server", "data-dir": "dataDir", d: "dataDir",
  kubeconfig: "kubeconfig",
};

function fatal(msg: string): number {
  log("fatal", msg);
  return 1;
}

export async function runToken(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (sub !== "rotate") {
    process.stderr.write(`the simulator implements "k3s token rotate" only (bootstrap tokens are not simulated), not "${argv.join(" ")}"\n`);
    return 1;
  }
  const opts: Record<string, string> = {};
  for (let i = 1; i < argv.length; i++) {
    const m = /^--?([\w-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in VALUE_FLAGS)) return fatal(`flag provided but not defined: ${argv[i]}`);
    opts[VALUE_FLAGS[m[1]]] = m[2] ?? argv[++i] ?? "";
  }
  process.stdout.write("\x1b[33mWARNING\x1b[0m: Recommended to keep a record of the old token. If restoring from a snapshot, you must use the token associated with that snapshot.\n");
  const server = (opts.server ?? process.env.K3S_URL ?? "https://127.0.0.1:6443").replace(/\/+$/, "");
  let token = opts.token ?? process.env.K3S_TOKEN ?? "";
  if (token === "") {
    const file = path.join(hostPath(opts.dataDir ?? process.env.K3S_DATA_DIR ?? "/var/lib/rancher/k3s"), "server", "token");
    try { token = fs.readFileSync(file, "utf8").replace(/\n+$/, ""); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return fatal(`open ${file.replace(process.env.K3S_SIM_ROOT ?? "\0", "")}: ${code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : (e as Error).message}`);
    }
  }
  let parsed;
  try { parsed = parseToken(token); } catch (e) { return fatal((e as Error).message); }
  if (!/^https:\/\//.test(server)) return fatal(`only https:// URLs are supported, invalid scheme: ${server}`);
  let cacerts: Buffer;
  try { cacerts = (await request(`${server}/cacerts`)).body; } catch (e) {
    return fatal(`failed to get CA certs: Get "${server}/cacerts": ${(e as Error).message}`);
  }
  if (!parsed.caHash) {
    log("warning", "Cluster CA certificate is not trusted by the host CA bundle, but the token does not include a CA hash. " +
      "Use the full token from the server's node-token file to enable Cluster CA validation.");
  } else if (caHashOf(cacerts) !== parsed.caHash) {
    return fatal(`token CA hash does not match the Cluster CA certificate hash: ${parsed.caHash} != ${caHashOf(cacerts)}`);
  }
  const r = await request(`${server}/v1-k3s/token`, {
    method: "PUT", ca: cacerts, basic: { user: "server", password: parsed.password }, body: JSON.stringify({ newToken: opts.newToken ?? "" }),
  }).catch((e: Error) => e);
  if (r instanceof Error) return fatal(`Put "${server}/v1-k3s/token": ${r.message}`);
  if (r.status < 200 || r.status > 299) {
    // A Status body becomes the error's message, as k3s's client turns it into an apierrors.StatusError.
    let msg = `${server}/v1-k3s/token: ${r.status}`;
    try { const s = JSON.parse(r.body.toString()) as { kind?: string; message?: string }; if (s.kind === "Status" && s.message) msg = s.message; } catch { /* not a Status */ }
    return fatal(msg);
  }
  await new Promise((res) => setTimeout(res, 1000));
  process.stdout.write("Token rotated, restart k3s nodes with new token\n");
  return 0;
}
