// Test harness: the bundled simulator as host processes, each with its own K3S_SIM_ROOT on 127.0.50.0/24.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, ChildProcess, execFile } from "node:child_process";
import { buildSimulator } from "./build";

export const FAST = { tokenDelay: 0.2, apiReadyDelay: 0.6, nodeReadyDelay: 0.3, etcdJoinDelay: 0.8, agentJoinDelay: 0.1, retryInterval: 0.2 };
export const PORT = 16443;

let nextIp = 10 + (process.pid % 20) * 10;
export function freeIp(): string {
  return `127.0.50.${nextIp++ % 250 + 2}`;
}

export interface Sim {
  root: string; ip: string; proc: ChildProcess; url: string;
  args: string[]; env: Record<string, string>; bin?: string;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export function newRoot(knobs: object = FAST): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-sim-test-"));
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  fs.writeFileSync(path.join(root, "etc/k3s-sim.json"), JSON.stringify(knobs));
  return root;
}

/** `bin`: another simulator file, e.g. a release the mirror stamped; the plain build by default. */
export async function startSim(args: string[], opts: { root?: string; knobs?: object; env?: Record<string, string>; ip?: string; bin?: string } = {}): Promise<Sim> {
  const bin = opts.bin ?? await buildSimulator();
  const root = opts.root ?? newRoot(opts.knobs);
  const ip = opts.ip ?? freeIp();
  const env = opts.env ?? {};
  const full = args[0] === "server" ? [...args, "--bind-address", ip, "--https-listen-port", String(PORT)] : args;
  const proc = spawn(bin, full, { env: { PATH: process.env.PATH, K3S_SIM_ROOT: root, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => { out += d.toString(); });
  proc.stderr?.on("data", (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return {
    root, ip, proc, url: `https://${ip}:${PORT}`, args, env, bin: opts.bin, output: () => out, exited,
    stop: async () => { if (proc.exitCode === null && proc.signalCode === null) { proc.kill("SIGTERM"); await exited; } },
  };
}

export async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 10000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function dataFile(sim: Sim, rel: string): string {
  return path.join(sim.root, "var/lib/rancher/k3s", rel);
}

export function readToken(sim: Sim): string | undefined {
  try { return fs.readFileSync(dataFile(sim, "server/token"), "utf8").trim(); } catch { return undefined; }
}

export function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { PATH: process.env.PATH, ...env }, timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

export async function kubectl(sim: Sim, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(await buildSimulator(), ["kubectl", ...args], { K3S_SIM_ROOT: sim.root });
}

/** Stops a simulator and starts it again on the same root and address, as `systemctl restart` would. */
export async function restartSim(sim: Sim, opts: { env?: Record<string, string>; bin?: string; args?: string[] } = {}): Promise<Sim> {
  await sim.stop();
  return startSim(opts.args ?? sim.args, { root: sim.root, ip: sim.ip, env: opts.env ?? sim.env, bin: opts.bin ?? sim.bin });
}

/** Any k3s subcommand against a simulator's files (kubeconfig, data dir), as on its node. */
export async function k3s(sim: Sim, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(sim.bin ?? await buildSimulator(), args, { K3S_SIM_ROOT: sim.root, ...env });
}

export async function nodeNames(server: Sim): Promise<string[]> {
  const r = await kubectl(server, ["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
  return r.stdout.split(" ").filter((x) => x !== "");
}

export async function waitNodeReady(server: Sim, name: string, timeoutMs = 10000): Promise<void> {
  await waitFor(`${name} Ready`, async () => {
    const r = await kubectl(server, ["get", "node", name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`]);
    return r.stdout === "True" || undefined;
  }, timeoutMs);
}

/** An HA cluster: a cluster-init server, then each further server once the previous one is through etcd's learner phase. */
export async function startHa(names: string[], opts: { knobs?: object } = {}): Promise<{ servers: Sim[]; token: string }> {
  const first = await startSim(["server", "--cluster-init", "--node-name", names[0]], { knobs: opts.knobs });
  const token = await waitFor("cluster-init server token", () => readToken(first));
  const servers = [first];
  for (const name of names.slice(1)) {
    const s = await startSim(["server", "--node-name", name], { knobs: opts.knobs, env: { K3S_TOKEN: token, K3S_URL: first.url } });
    servers.push(s);
    // Written after the learner's promotion: the next join would otherwise meet "too many learners".
    await waitFor(`${name} token`, () => readToken(s), 15000);
  }
  for (const s of servers) await waitFor(`${s.ip} up`, () => s.output().includes("k3s is up and running") || undefined, 15000);
  return { servers, token };
}
