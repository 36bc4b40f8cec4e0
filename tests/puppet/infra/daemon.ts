// Long-running services of the Puppet infrastructure, started without systemd: each one runs as its
// package's user in a session of its own, and the PID we record is the service's own PID (every wrapper
// execs), so stopping it never needs a name match.
import { spawn } from "node:child_process";
import { promises as fs, openSync, closeSync, existsSync, readFileSync } from "node:fs";

export const log = (line: string) => process.stderr.write(`[puppet-infra] ${line}\n`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DaemonSpec {
  name: string;
  user: string;
  argv: string[];
  env: Record<string, string>;
  /** Host file bind-mounted over /etc/hosts in the service's private mount namespace. */
  hostsFile?: string;
  logFile: string;
  pidFile: string;
}

/** Starts the service detached; resolves with its PID once it is running. */
export async function startDaemon(spec: DaemonSpec): Promise<number> {
  const envArgs = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`);
  const inner = ["setpriv", `--reuid=${spec.user}`, `--regid=${spec.user}`, "--init-groups",
    "env", "-i", ...envArgs, ...spec.argv];
  const argv = spec.hostsFile
    ? ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
      'mount --bind "$0" /etc/hosts && exec "$@"', spec.hostsFile, ...inner]
    : inner;
  const out = openSync(spec.logFile, "a");
  try {
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", out, out] });
    if (child.pid === undefined) throw new Error(`puppet-infra: could not start ${spec.name} (${argv[0]})`);
    child.on("error", () => undefined);
    child.unref();
    await fs.writeFile(spec.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !existsSync(`/proc/${pid}/stat`) || !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Polls `check` every `intervalMs` until it returns true; says what it waits for and for how long, and
 * fails early with the service's log when the process it depends on has died.
 */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean,
  opts: { pid?: number; logFile?: string; intervalMs?: number } = {}): Promise<number> {
  const started = Date.now();
  log(`waiting up to ${Math.round(timeoutMs / 1000)} s for ${what}`);
  let lastNote = started;
  for (;;) {
    if (await check()) {
      const ms = Date.now() - started;
      log(`${what}: ready after ${(ms / 1000).toFixed(1)} s`);
      return ms;
    }
    if (opts.pid !== undefined && !alive(opts.pid)) {
      throw new Error(`puppet-infra: ${what}: the process (pid ${opts.pid}) exited; last log lines of ` +
        `${opts.logFile}:\n${opts.logFile ? tail(opts.logFile) : ""}`);
    }
    const now = Date.now();
    if (now - started > timeoutMs) {
      throw new Error(`puppet-infra: gave up waiting for ${what} after ${Math.round(timeoutMs / 1000)} s` +
        (opts.logFile ? `; last log lines of ${opts.logFile}:\n${tail(opts.logFile)}` : ""));
    }
    if (now - lastNote >= 10_000) {
      log(`still waiting for ${what} (${Math.round((now - started) / 1000)} s of ${Math.round(timeoutMs / 1000)} s)`);
      lastNote = now;
    }
    await sleep(opts.intervalMs ?? 500);
  }
}

/**
 * `first` (SIGTERM unless the service wants another), then SIGKILL of its whole process group after
 * `graceMs`. The first signal goes to the service's PID only: PostgreSQL shuts its children down itself.
 */
export async function stopPid(name: string, pid: number, first: NodeJS.Signals = "SIGTERM", graceMs = 30_000): Promise<void> {
  if (!alive(pid)) return;
  const signal = (sig: NodeJS.Signals, group: boolean) => {
    try { process.kill(group ? -pid : pid, sig); } catch { try { process.kill(pid, sig); } catch { /* gone */ } }
  };
  signal(first, false);
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(200);
  if (alive(pid)) {
    log(`${name} (pid ${pid}) ignored SIGTERM for ${graceMs / 1000} s; killing it`);
    signal("SIGKILL", true);
    while (alive(pid)) await sleep(100);
  }
}

/** Stops a service left by an earlier run, from its PID file, only if that PID still runs `expect`. */
export async function stopFromPidFile(name: string, pidFile: string, expect: RegExp,
  first: NodeJS.Signals = "SIGTERM"): Promise<void> {
  let pid: number;
  try {
    pid = Number((await fs.readFile(pidFile, "utf8")).trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return;
  let cmdline = "";
  try { cmdline = (await fs.readFile(`/proc/${pid}/cmdline`, "utf8")).replace(/\0/g, " "); } catch { return; }
  if (!expect.test(cmdline)) return;
  log(`stopping ${name} left running by an earlier run (pid ${pid})`);
  await stopPid(name, pid, first);
}

/** Resident memory of a process in MiB (0 when gone). */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

export interface CmdResult { code: number; stdout: string; stderr: string; }

/** Runs a short command; a non-zero exit throws with its stderr unless `allowFail`. */
export function cmd(file: string, args: string[], opts: { input?: string; allowFail?: boolean;
  timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env,
      timeout: opts.timeoutMs ?? 120_000, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, sig) => {
      const res = { code: code ?? 128, stdout, stderr };
      if (res.code !== 0 && !opts.allowFail) {
        reject(new Error(`puppet-infra: ${file} ${args.join(" ")} exited ${code ?? sig}: ${stderr.trim().slice(-2000)}`));
      } else resolve(res);
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}
