// What the verification suites on test nodes share: one test node running the simulated k3s server, the
// module and the CLI run against it, and command-line sampling on the host and inside the node for as long
// as a verification runs, so a token that reached any process's argv is caught.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { CHECK_TICK_S, SSH_RETRY_S, verifyServerToken, type VerificationReport, type VerifyOptions } from "../../components/verify";
import { startNodes, testSshKey, type TestNode } from "../rig/nodes";
import { installSimulatedK3s, startSimulatedK3s, type SimKnobs } from "../helpers/simulated-k3s";
import { CommandLineSampler } from "../engine/evidence";

export const CLI = path.resolve(__dirname, "../../scripts/verify-server-token-ready.sh");
export const DATA_DIR = "/var/lib/rancher/k3s";
export const TOKEN_FILE = `${DATA_DIR}/server/token`;
/** Fast but ordered like k3s: token files, then API ready (and READY=1), then the node Ready. */
export const FAST: SimKnobs = { tokenDelay: 0.3, apiReadyDelay: 1, nodeReadyDelay: 0.3 };
/** The smallest deadline the verifier accepts; every fault here must be reported well before it. */
export const MIN_TIMEOUT_S = 30;
export const INTERVAL_S = 0.5;
/** The node-side check as `ps` shows it (its text comes on stdin): long-lived enough to be the samplers' canary. */
export const WATCHER = "bash -s -- --events";
export const SUDO_WATCHER = `sudo -n ${WATCHER}`;
/** How a waiting line ends: step 1 retries on its own schedule, steps 2-7 are checked on the server. */
export const SSH_EVERY = `retrying every ${SSH_RETRY_S}s`;
export const NODE_EVERY = `checking every ${CHECK_TICK_S}s on the server`;
/** `kubectl -o jsonpath` that prints a Node's Ready condition (`True` once Ready): step 3's condition as kubectl shows it. */
export const NODE_READY_JSONPATH = `{.status.conditions[?(@.type=="Ready")].status}`;

/** One test node with the simulated k3s installed (not started); stopped by `close()`. */
export class SimServer {
  private constructor(readonly node: TestNode) {}

  static async boot(name: string, ip: string): Promise<SimServer> {
    const [node] = await startNodes([{ name, ip }]);
    try {
      await installSimulatedK3s(node);
    } catch (err) {
      await node.stop();
      throw err;
    }
    return new SimServer(node);
  }

  get ip(): string { return this.node.ip; }
  get name(): string { return this.node.name; }

  /** A command as root inside the node that must succeed; its trimmed stdout. */
  async sh(cmd: string): Promise<string> {
    const r = await this.node.exec(cmd);
    assert.equal(r.code, 0, `on ${this.node.name}: ${cmd}\n${r.stderr}`);
    return r.stdout.trim();
  }

  /** k3s from scratch with these knobs; `ready` also waits until systemd reports it active and its node Ready. */
  async start(knobs: SimKnobs, opts: { ready?: boolean; restart?: "always" | "no"; config?: string } = {}): Promise<void> {
    if (opts.config !== undefined) await installSimulatedK3s(this.node, opts.config);
    await startSimulatedK3s(this.node, knobs, { restart: opts.restart });
    if (!opts.ready) return;
    await this.waitFor("systemctl is-active k3s", "active", 30);
    await this.waitFor(`k3s kubectl get node ${this.name} -o jsonpath='${NODE_READY_JSONPATH}'`, "True", 10);
  }

  /** Polls a command inside the node until its output is `want`, saying what it waits for on failure. */
  async waitFor(cmd: string, want: string, seconds: number): Promise<void> {
    const r = await this.node.exec(`for i in $(seq 1 ${seconds * 10}); do [ "$(${cmd})" = ${want} ] && exit 0; sleep 0.1; done; ${cmd}; exit 1`,
      { timeoutMs: (seconds + 10) * 1000 });
    assert.equal(r.code, 0, `waited ${seconds} s on ${this.node.name} for \`${cmd}\` to print ${want}; last: ${r.stdout.trim()}`);
  }

  /** Runs a command detached inside the node (it outlives the exec), e.g. to undo a fault later. */
  async later(cmd: string): Promise<void> {
    await this.sh(`setsid -f bash -c ${shq(cmd)} >/dev/null 2>&1 </dev/null`);
  }

  /**
   * What is left of the node-side check on the node: its processes (the script, the systemd watch it starts)
   * and temporary directories. Empty once a verification is over, however it ended.
   */
  async checkLeftovers(): Promise<string[]> {
    const ps = await this.sh("ps -eo pid=,args=");
    const procs = ps.split("\n").filter((l) => /bash -s -- --events|k3s-cluster-check|busctl monitor .*k3s_2eservice/.test(l));
    const dirs = (await this.sh("ls -d /tmp/k3s-cluster-check.* 2>/dev/null || true")).split("\n").filter(Boolean);
    return [...procs, ...dirs];
  }

  /** Process ids of the node-side checks the verifier runs on this node right now (not their subshells). */
  async watcherPids(): Promise<number[]> {
    const ps = await this.sh("ps -eo pid=,ppid=,args=");
    const rows = ps.split("\n").map((l) => /^\s*(\d+)\s+(\d+) (.*)$/.exec(l)).filter((m) => m !== null)
      .filter((m) => m[3].startsWith("bash -s -- --events")).map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]) }));
    // A `$(…)` subshell of the check shows the same command line until it execs: keep only the checks.
    return rows.filter((r) => !rows.some((o) => o.pid === r.ppid)).map((r) => r.pid);
  }

  /** The server token as k3s wrote it and its password ([] before k3s wrote one). */
  async tokenSecrets(file = TOKEN_FILE): Promise<string[]> {
    const text = await fs.readFile(path.join(this.node.rootDir, file), "utf8").catch(() => "");
    const token = text.trim();
    return token ? [token, token.slice(token.lastIndexOf(":") + 1)] : [];
  }

  async hostKeyFingerprint(): Promise<string> {
    return this.sh("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2");
  }

  async close(): Promise<void> {
    await this.node.stop();
  }
}

export function shq(s: string): string {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}

/**
 * Samples every process's command line inside a node from inside it (what `ps` on the server shows),
 * into a root-only file read back from the host: no secret is ever put on a command line to search for it.
 */
export class NodeCommandLineSampler {
  private static readonly OUT = "/var/tmp/verify-cmdlines";
  private static readonly FLAG = "/var/tmp/verify-cmdlines.on";

  constructor(private readonly server: SimServer) {}

  async start(): Promise<void> {
    const { OUT, FLAG } = NodeCommandLineSampler;
    await this.server.sh(`umask 077; rm -f ${OUT}; touch ${FLAG}`);
    // One `cat` of every cmdline per sample; a blank line separates samples.
    await this.server.later(`umask 077; while [ -e ${FLAG} ]; do cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo; echo; sleep 0.03; done > ${OUT}`);
  }

  /** Stops sampling; how many samples were taken and which secrets (or canaries) showed up. */
  async stop(needles: string[]): Promise<{ samples: number; found: string[] }> {
    const { OUT, FLAG } = NodeCommandLineSampler;
    await this.server.sh(`rm -f ${FLAG}; sleep 0.2`);
    const text = await fs.readFile(path.join(this.server.node.rootDir, OUT), "utf8").catch(() => "");
    await this.server.sh(`rm -f ${OUT}`);
    return { samples: text.split("\n\n").length - 1, found: needles.filter((n) => text.includes(n)) };
  }
}

/** Samplers on the host (which sees the node's processes too) and inside the node, run together. */
export class Samplers {
  private readonly host = new CommandLineSampler();
  private readonly inNode: NodeCommandLineSampler;

  constructor(server: SimServer) {
    this.inNode = new NodeCommandLineSampler(server);
  }

  async start(): Promise<void> {
    await this.inNode.start();
    this.host.start(20);
  }

  /** Stops both; which needles each saw, and how many samples the node's sampler took. */
  async stop(needles: string[]): Promise<{ host: string[]; node: string[]; nodeSamples: number }> {
    this.host.stop();
    const node = await this.inNode.stop(needles);
    return { host: needles.filter((n) => this.host.findings([n]).leaks.length > 0), node: node.found, nodeSamples: node.samples };
  }

  /**
   * Stops both and asserts that no secret showed in any command line. `canary` is a command line fragment
   * the run must have produced (a command the verifier ran on the node), proving the samplers saw it.
   */
  async stopAndCheck(secrets: string[], canary: string): Promise<void> {
    const usable = secrets.filter((s) => s.length >= 16);
    assert.ok(usable.length > 0, "no secret to look for: the check would pass vacuously");
    const seen = await this.stop([...usable, canary]);
    assert.deepEqual(seen.host.filter((n) => n !== canary), [], "a command line on the host or node held the token");
    assert.deepEqual(seen.node.filter((n) => n !== canary), [], "a command line inside the node held the token");
    assert.ok(seen.host.includes(canary), `the host sampler never saw "${canary}"`);
    assert.ok(seen.node.includes(canary), `the node's sampler never saw "${canary}" in ${seen.nodeSamples} samples`);
  }
}

export interface Run {
  report: VerificationReport;
  progress: string[];
  ms: number;
}

export type RunOptions = Partial<Pick<VerifyOptions, "username" | "timeoutSeconds" | "intervalSeconds" | "expectedHostKey" | "expectedToken" | "nodeName">> & {
  /** Called with each progress line as it comes (e.g. to act on the server when a step starts). */
  onLine?: (line: string) => void;
};

/** The module once against the server; progress lines and step details must not hold the token. */
export async function verify(server: SimServer, opts: RunOptions = {}): Promise<Run> {
  const progress: string[] = [];
  const t0 = Date.now();
  const report = await verifyServerToken({
    host: server.ip, username: opts.username ?? "root", privateKey: testSshKey().privateKey,
    nodeName: "nodeName" in opts ? opts.nodeName : server.name, timeoutSeconds: opts.timeoutSeconds ?? MIN_TIMEOUT_S,
    intervalSeconds: opts.intervalSeconds ?? INTERVAL_S, expectedHostKey: opts.expectedHostKey, expectedToken: opts.expectedToken,
    onProgress: (line) => { progress.push(line); opts.onLine?.(line); },
  });
  return { report, progress, ms: Date.now() - t0 };
}

/** Asserts that none of the secrets is in the run's progress, step details or (failed) report. */
export function assertNoSecretInRun(run: Run, secrets: string[]): void {
  const { token: _t, agentToken: _a, ...rest } = run.report;
  const outside = [run.progress.join("\n"), JSON.stringify(rest)].join("\n");
  for (const s of secrets.filter((x) => x.length >= 16)) {
    assert.ok(!outside.includes(s), "a progress line, step detail or report field other than token holds the token");
  }
}

export function step(report: VerificationReport, n: number) {
  const s = report.steps.find((x) => x.step === n);
  assert.ok(s, `step ${n} missing from ${JSON.stringify(report.steps)}`);
  return s;
}

/** `connections`: SSH connections opened, 1 unless step 1 had to retry (one attempt, one connection). */
export function assertPassed(run: Run, connections = 1): void {
  assert.equal(run.report.ok, true, JSON.stringify(run.report.steps, null, 1));
  assert.deepEqual(run.report.steps.map((s) => [s.step, s.ok]), [1, 2, 3, 4, 5, 6, 7].map((n) => [n, true]));
  assert.equal(run.report.sshConnections, connections, "SSH connections opened: one per step 1 attempt, none after");
}

export function assertFailedAt(run: Run, n: number, detail: RegExp): void {
  assert.equal(run.report.ok, false, "the verification passed");
  assert.equal(run.report.failedStep, n, JSON.stringify(run.report.steps, null, 1));
  assert.match(step(run.report, n).detail, detail);
  assert.equal(run.report.steps.length, n, "no step runs after the failed one");
  assert.equal(run.report.token, undefined, "a failed verification returns no token");
  assert.ok(run.progress.some((l) => l.startsWith(`❌ [${n}/7]`)), run.progress.join("\n"));
}

export interface CliResult { code: number; stdout: string; stderr: string; ms: number }

/** The CLI as a user would run it; `onStderr` sees its progress as it comes. */
export function cli(args: string[], onStderr?: (text: string) => void): Promise<CliResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn("bash", [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => { stderr += d; onStderr?.(String(d)); });
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr, ms: Date.now() - t0 }));
  });
}

/** The CLI's arguments against this server with the test key and the suite's fast polling. */
export function cliArgs(server: SimServer, user: string, ...extra: string[]): string[] {
  return [server.ip, user, testSshKey().privateKeyPath, "--timeout", String(MIN_TIMEOUT_S), "--interval",
    String(INTERVAL_S), "--node-name", server.name, ...extra];
}
