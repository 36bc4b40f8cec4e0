// Runs host commands for the rig: a failure throws with the command's stderr, never silently.
import { spawn } from "node:child_process";

export interface RunResult { code: number; stdout: string; stderr: string; }

export function run(
  file: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; allowFail?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => { timedOut = true; child.kill("SIGKILL"); }, opts.timeoutMs)
      : undefined;
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (timedOut) {
        result.stderr += `\n(killed after ${opts.timeoutMs} ms)`;
        result.code = 124;
      }
      if (result.code !== 0 && !opts.allowFail) {
        reject(new Error(`${file} ${args.join(" ")} exited ${result.code}: ${result.stderr.trim().slice(-2000)}`));
      } else resolve(result);
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
