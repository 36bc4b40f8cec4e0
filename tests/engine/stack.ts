// Drives the real `pulumi` CLI (built by scripts/pulumi-toolchain.ts) on one stack: file backend, passphrase
// secrets provider, no update check, no plugin downloads. Secrets reach the CLI on stdin, never in argv.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureToolchain, offlineEnv } from "../../scripts/pulumi-toolchain";

export const PROJECT_DIR = path.resolve(__dirname, "../..");

/** What a project directory links to: the project's settings and npm packages. */
const LINKED = ["Pulumi.yaml", "package.json", "tsconfig.json", "node_modules"];
/** What it copies: the program, which must not change under a running test (the module digest decides re-applies). */
const COPIED = ["index.ts", "components", "puppet/modules"];

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Show the CLI's own output on this process's stderr as it comes (the engine's progress). */
  echo?: boolean;
  allowFail?: boolean;
}

export interface StackOptions {
  stack: string;
  /** Holds the backend (`state/`), the passphrase file and, for a scratch project, the project links. */
  workDir: string;
  /** The project the stack belongs to; default: a scratch folder linking to this project's files. */
  projectDir?: string;
}

/** A scratch project folder whose entries link to this project, so stack config files stay out of the checkout. */
function scratchProject(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const entry of LINKED) {
    const link = path.join(dir, entry);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(PROJECT_DIR, entry), link);
  }
  for (const entry of COPIED) {
    fs.cpSync(path.join(PROJECT_DIR, entry), path.join(dir, entry), {
      recursive: true,
      filter: (src) => !/\/spec\/fixtures(\/|$)/.test(src),
    });
  }
  return dir;
}

export class PulumiStack {
  readonly stack: string;
  readonly projectDir: string;
  readonly workDir: string;
  readonly passphraseFile: string;
  readonly backendDir: string;
  /** Everything the CLI printed unasked (not `--show-secrets` output), for secrecy scans. */
  readonly transcript: string[] = [];

  constructor(o: StackOptions) {
    this.stack = o.stack;
    this.workDir = o.workDir;
    fs.mkdirSync(o.workDir, { recursive: true, mode: 0o700 });
    this.projectDir = o.projectDir ?? scratchProject(path.join(o.workDir, "project"));
    this.backendDir = path.join(o.workDir, "state");
    fs.mkdirSync(this.backendDir, { recursive: true });
    this.passphraseFile = path.join(o.workDir, "passphrase");
    if (!fs.existsSync(this.passphraseFile)) {
      fs.writeFileSync(this.passphraseFile, randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
    }
  }

  env(): NodeJS.ProcessEnv {
    ensureToolchain();
    return offlineEnv({
      PULUMI_HOME: path.join(this.workDir, "home"),
      PULUMI_BACKEND_URL: `file://${this.backendDir}`,
      PULUMI_CONFIG_PASSPHRASE_FILE: this.passphraseFile,
      PULUMI_CONFIG_PASSPHRASE: undefined,
    });
  }

  /** `pulumi <args> --stack <stack>` in the project folder. */
  run(args: string[], o: RunOptions = {}): Promise<RunResult> {
    const started = Date.now();
    const env = this.env();
    const full = [...args, "--stack", this.stack, "--non-interactive"];
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn("pulumi", full, { cwd: this.projectDir, env, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      const timer = setTimeout(() => child.kill("SIGINT"), o.timeoutMs ?? 20 * 60_000);
      child.stdout.on("data", (d: Buffer) => { stdout += d; if (o.echo) process.stderr.write(d); });
      child.stderr.on("data", (d: Buffer) => { stderr += d; if (o.echo) process.stderr.write(d); });
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        const r = { code: code ?? -1, stdout, stderr, ms: Date.now() - started };
        if (!args.includes("--show-secrets")) this.transcript.push(`$ pulumi ${args.join(" ")}\n${stdout}\n${stderr}`);
        if (r.code !== 0 && !o.allowFail) {
          reject(new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${tailOf(stdout, 60)}\n${tailOf(stderr, 30)}`));
        } else resolve(r);
      });
      child.stdin.end(o.input ?? "");
    });
  }

  async init(): Promise<void> {
    const ls = await this.run(["stack", "ls", "--json"], { allowFail: true });
    const known = ls.code === 0 && (JSON.parse(ls.stdout || "[]") as { name: string }[]).some((s) => s.name === this.stack);
    if (!known) {
      await this.runNoStack(["stack", "init", this.stack, "--secrets-provider", "passphrase"]);
    }
  }

  /** A command that must not get `--stack` (stack init). */
  private runNoStack(args: string[]): Promise<RunResult> {
    const env = this.env();
    return new Promise<RunResult>((resolve, reject) => {
      const started = Date.now();
      const child = spawn("pulumi", [...args, "--non-interactive"], { cwd: this.projectDir, env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      child.on("close", (code) => (code === 0 ? resolve({ code, stdout: out, stderr: "", ms: Date.now() - started })
        : reject(new Error(`pulumi ${args.join(" ")} exited ${code}: ${out}`))));
    });
  }

  /** Sets plain keys in one call each; secrets are read by the CLI from stdin. */
  async setConfig(values: Record<string, string>, secrets: Record<string, string> = {}): Promise<void> {
    for (const [key, value] of Object.entries(values)) await this.run(["config", "set", key, value]);
    for (const [key, value] of Object.entries(secrets)) await this.run(["config", "set", "--secret", key], { input: value });
  }

  async removeConfig(keys: string[]): Promise<void> {
    for (const key of keys) await this.run(["config", "rm", key], { allowFail: true });
  }

  async outputs(showSecrets = false): Promise<Record<string, unknown>> {
    const r = await this.run(["stack", "output", "--json", ...(showSecrets ? ["--show-secrets"] : [])]);
    return JSON.parse(r.stdout || "{}") as Record<string, unknown>;
  }

  /** The checkpoint as `pulumi stack export` writes it (secrets as ciphertext unless asked). */
  async exportState(showSecrets = false): Promise<string> {
    return (await this.run(["stack", "export", ...(showSecrets ? ["--show-secrets"] : [])])).stdout;
  }
}

export function tailOf(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
