// What the end-to-end Puppet runs share: nodes prepared as Puppet agents of the test puppetserver with the
// k3s simulator available as a local binary, timed agent runs whose output is kept for the secret checks,
// a /proc sampler, and the file scans that prove where a token may sit on a node.
import { createHash } from "node:crypto";
import { promises as fs, readFileSync, readdirSync, statSync } from "node:fs";
import * as path from "node:path";
import { startNodes, type NodeSpec, type TestNode } from "../../rig/nodes";
import type { PuppetInfra } from "../infra/index";

/** Where the module's `binary_source` points on every node (copied there before any run). */
export const SIM_SOURCE = "/opt/k3s-sim/k3s";

/** Fast simulator timings: the order of events is k3s's, only the waits are shorter. */
export const SIM_KNOBS = { tokenDelay: 1, apiReadyDelay: 3, nodeReadyDelay: 1, etcdJoinDelay: 2, agentJoinDelay: 1, retryInterval: 2 };

export interface RunRecord { node: string; label: string; code: number; ms: number; stdout: string; stderr: string; }

/** Every agent run's output, for the check that no token ever appears in it. */
export const transcript: RunRecord[] = [];

const say = (line: string) => process.stderr.write(`[puppet-e2e] ${line}\n`);
export { say };

export async function prepareNode(node: TestNode, simulator: string, serverName: string): Promise<void> {
  const dest = path.join(node.rootDir, SIM_SOURCE);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.copyFile(simulator, dest);
  await fs.chmod(dest, 0o755);
  await fs.writeFile(path.join(node.rootDir, "etc/k3s-sim.json"), JSON.stringify(SIM_KNOBS) + "\n", { mode: 0o644 });
  // One agent per node, but a fresh certname: without http_keepalive_timeout = 0 the first run stalls 30 s.
  await fs.writeFile(path.join(node.rootDir, "etc/puppet/puppet.conf"), `[main]
certname = ${node.name}
server = ${serverName}
environment = production
http_keepalive_timeout = 0
`, { mode: 0o644 });
}

/**
 * Boots the nodes, a second time if the first boot fails: with ten nodes booting at once on two cores the
 * rig occasionally loses sight of a node's init during boot ("node … is not running").
 */
export async function bootNodes(specs: NodeSpec[]): Promise<TestNode[]> {
  try {
    return await startNodes(specs);
  } catch (err) {
    say(`booting the nodes failed once (${(err as Error).message.split("\n")[0]}); booting them again`);
    return await startNodes(specs);
  }
}

/**
 * Hiera data for the production environment. The node blocks of site.pp then hold the seed's class
 * declarations verbatim; what only this test environment needs (the simulator as a local binary) comes from here.
 */
export async function writeHiera(infra: PuppetInfra, data: Record<string, string | number | boolean>): Promise<void> {
  await fs.writeFile(path.join(infra.environmentDir, "hiera.yaml"),
    "---\nversion: 5\ndefaults:\n  datadir: data\n  data_hash: yaml_data\nhierarchy:\n  - name: common\n    path: common.yaml\n", { mode: 0o644 });
  await fs.mkdir(path.join(infra.environmentDir, "data"), { recursive: true, mode: 0o755 });
  await fs.writeFile(path.join(infra.environmentDir, "data", "common.yaml"),
    "---\n" + Object.entries(data).map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`).join(""), { mode: 0o644 });
}

/** An agent's order of its cluster's servers, as the module's join script ranks them: sha256("<certname>/<title>"). */
export function serverOrder(certname: string, titles: string[]): string[] {
  const key = (t: string) => createHash("sha256").update(`${certname}/${t}`).digest("hex");
  return [...titles].sort((a, b) => key(a).localeCompare(key(b)));
}

/** The catalog Puppet cached on the node, with its mode, owner and group. */
export async function cachedCatalog(node: TestNode): Promise<{ path: string; mode: string; owner: string; text: string }> {
  const file = `/var/cache/puppet/client_data/catalog/${node.name}.json`;
  const st = await node.exec(`stat -c '%a %U:%G' ${file}`);
  if (st.code !== 0) throw new Error(`${node.name}: no cached catalog at ${file}: ${st.stderr}`);
  const [mode, owner] = st.stdout.trim().split(" ");
  return { path: file, mode, owner, text: await fs.readFile(path.join(node.rootDir, file), "utf8") };
}

/** `puppet agent -t` on the node; exit 0 = nothing to change, 2 = changed, 4/6 = failures. */
export async function puppetRun(node: TestNode, label: string, opts: { mayFail?: boolean } = {}): Promise<RunRecord> {
  const t0 = Date.now();
  say(`${node.name}: puppet agent run "${label}" (up to 300 s)`);
  const r = await node.exec("puppet agent --test --color=false --server puppet.test", { timeoutMs: 300_000 });
  const rec = { node: node.name, label, code: r.code, ms: Date.now() - t0, stdout: r.stdout, stderr: r.stderr };
  transcript.push(rec);
  say(`${node.name}: run "${label}" exited ${r.code} after ${(rec.ms / 1000).toFixed(1)} s`);
  if (r.code !== 0 && r.code !== 2 && !opts.mayFail) {
    throw new Error(`puppet run "${label}" on ${node.name} failed (exit ${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
  }
  return rec;
}

/**
 * Runs the agent until a run changes nothing (exit 0), at most `max` runs; returns the runs that made
 * changes — the number of runs the role needs to converge.
 */
export async function converge(node: TestNode, label: string, max = 4): Promise<RunRecord[]> {
  const changing: RunRecord[] = [];
  for (let i = 1; i <= max; i++) {
    const rec = await puppetRun(node, `${label} #${i}`);
    if (rec.code === 0) return changing;
    changing.push(rec);
  }
  throw new Error(`${node.name} still changes something after ${max} Puppet runs`);
}

/** converge() on several nodes at once (their runs overlap as in an estate); the changing runs of each. */
export async function convergeAll(nodes: TestNode[], label: string, max = 5): Promise<RunRecord[][]> {
  return Promise.all(nodes.map((n) => converge(n, label, max)));
}

export interface ClusterNode { name: string; ready: string; roles: string; }

/** The cluster's node list as the server's own `k3s kubectl` shows it. */
export async function clusterNodes(server: TestNode): Promise<ClusterNode[]> {
  const r = await server.exec("k3s kubectl get nodes -o json");
  if (r.code !== 0) throw new Error(`k3s kubectl get nodes on ${server.name} failed: ${r.stderr}`);
  const list = JSON.parse(r.stdout) as { items: { metadata: { name: string; labels?: Record<string, string> };
    status: { conditions: { type: string; status: string }[] } }[] };
  return list.items.map((n) => ({
    name: n.metadata.name,
    ready: n.status.conditions.find((c) => c.type === "Ready")?.status ?? "Unknown",
    roles: Object.keys(n.metadata.labels ?? {}).filter((l) => l.startsWith("node-role.kubernetes.io/"))
      .map((l) => l.split("/")[1]).sort().join(","),
  })).sort((a, b) => a.name.localeCompare(b.name));
}

/** Polls until every name is listed Ready by the server (nodes turn Ready shortly after joining). */
export async function waitForReady(server: TestNode, names: string[], timeoutMs = 60_000): Promise<ClusterNode[]> {
  say(`waiting up to ${timeoutMs / 1000} s for ${names.join(", ")} to be Ready on ${server.name}`);
  const deadline = Date.now() + timeoutMs;
  let last: ClusterNode[] = [];
  for (;;) {
    last = await clusterNodes(server).catch(() => last);
    if (names.every((n) => last.some((c) => c.name === n && c.ready === "True"))) return last;
    if (Date.now() > deadline) {
      throw new Error(`${server.name}: not all of ${names.join(", ")} Ready after ${timeoutMs / 1000} s: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The secrets of a cluster as its first server holds them: the full tokens and their password parts. */
export interface ClusterSecrets { server: string; agent: string; serverPassword: string; agentPassword: string; }

export async function readSecrets(server: TestNode): Promise<ClusterSecrets> {
  const dir = path.join(server.rootDir, "var/lib/rancher/k3s/server");
  const server_ = (await fs.readFile(path.join(dir, "token"), "utf8")).trim();
  // Without an `agent-token` setting k3s links agent-token to the server token (an absolute link that
  // only resolves inside the node).
  const agentIsLink = (await fs.lstat(path.join(dir, "agent-token"))).isSymbolicLink();
  const agent = agentIsLink ? server_ : (await fs.readFile(path.join(dir, "agent-token"), "utf8")).trim();
  const pw = (t: string) => t.replace(/^K10[0-9a-f]+::(server|node):/, "");
  return { server: server_, agent, serverPassword: pw(server_), agentPassword: pw(agent) };
}

/** Places on a node where Puppet, Facter, k3s or the module could leave a token behind. */
export const SECRET_DIRS = ["etc/rancher", "var/lib/rancher", "etc/facter", "opt/puppetlabs", "var/lib/puppet",
  "var/cache/puppet", "etc/puppet", "tmp", "var/tmp", "usr/local/bin", "etc/systemd/system", "root"];

export interface SecretFile { path: string; mode: string; uid: number; gid: number; }

/** Every regular file under the node's SECRET_DIRS whose content contains one of `needles`. */
export function filesContaining(node: TestNode, needles: string[]): SecretFile[] {
  const found: SecretFile[] = [];
  const walk = (hostDir: string) => {
    let entries: import("node:fs").Dirent[];
    try { entries = readdirSync(hostDir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const p = path.join(hostDir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = statSync(p);
        if (st.size > 20 * 1024 * 1024) continue;
        const text = readFileSync(p, "latin1");
        if (needles.some((n) => text.includes(n))) {
          found.push({ path: "/" + path.relative(node.rootDir, p), mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid });
        }
      }
    }
  };
  for (const d of SECRET_DIRS) walk(path.join(node.rootDir, d));
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Samples every process's command line on the host (the nodes' processes included: their PID namespaces
 * are children of the host's) while Puppet runs, so a token passed as an argument, even briefly, is seen.
 */
export class CmdlineSampler {
  private readonly seen = new Set<string>();
  private timer?: NodeJS.Timeout;
  samples = 0;

  start(intervalMs = 50): void {
    const tick = () => {
      this.samples++;
      for (const pid of readdirSync("/proc")) {
        if (!/^\d+$/.test(pid)) continue;
        try {
          const cmd = readFileSync(`/proc/${pid}/cmdline`, "latin1");
          if (cmd) this.seen.add(cmd.replace(/\0/g, " ").trim());
        } catch { /* exited meanwhile */ }
      }
    };
    this.timer = setInterval(tick, intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get distinct(): number { return this.seen.size; }

  /** Command lines containing any needle (never printed by the tests: they hold the secret). */
  containing(needles: string[]): string[] {
    return [...this.seen].filter((c) => needles.some((n) => c.includes(n)));
  }
}

/** A class declaration for site.pp from a parameter map (strings quoted, booleans/numbers/arrays literal). */
export function classDeclaration(params: Record<string, string | number | boolean | string[]>): string {
  const lit = (v: string | number | boolean | string[]): string =>
    Array.isArray(v) ? `[${v.map(lit).join(", ")}]` : typeof v === "string" ? `'${v.replace(/'/g, "\\'")}'` : String(v);
  const width = Math.max(...Object.keys(params).map((k) => k.length));
  return `  class { 'k3s_cluster':\n${Object.entries(params)
    .map(([k, v]) => `    ${k.padEnd(width)} => ${lit(v)},`).join("\n")}\n  }`;
}

export function siteManifest(nodes: Record<string, Record<string, string | number | boolean | string[]>>): string {
  return Object.entries(nodes).map(([name, params]) => `node '${name}' {\n${classDeclaration(params)}\n}\n`).join("\n") +
    "node default {}\n";
}
