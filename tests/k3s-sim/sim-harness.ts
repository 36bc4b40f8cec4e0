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

export async function startSim(args: string[], opts: { root?: string; knobs?: object; env?: Record<string, string>; ip?: string } = {}): Promise<Sim> {
  const bin = await buildSimulator();
  const root = opts.root ?? newRoot(opts.knobs);
  const ip = opts.ip ?? freeIp();
  const full = args[0] === "server" ? [...args, "--bind-address", ip, "--https-listen-port", String(PORT)] : args;
  const proc = spawn(bin, full, { env: { PATH: process.env.PATH, K3S_SIM_ROOT: root, ...(opts.env ?? {}) }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => { out += d.toString(); });
  proc.stderr?.on("data", (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return {
    root, ip, proc, url: `https://${ip}:${PORT}`, output: () => out, exited,
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
