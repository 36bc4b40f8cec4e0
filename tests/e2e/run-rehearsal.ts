// Runs one rehearsal in its own process (Pulumi allows one mocks setup per process) and returns its
// result together with everything the process printed, so callers can scan that output for secrets.
import { spawn } from "node:child_process";
import * as path from "node:path";
import type { RehearsalOptions, RehearsalResult } from "./rehearse";

export interface RehearsalRun {
  result: RehearsalResult;
  output: string;
}

export function runRehearsal(options: RehearsalOptions): Promise<RehearsalRun> {
  const script = path.join(__dirname, "rehearse.ts");
  return new Promise((resolve, reject) => {
    // Options travel on stdin: they may hold a stack secret, which must not be a process argument.
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: path.resolve(__dirname, "../.."),
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin.end(JSON.stringify(options));
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      stderr += text;
      if (process.env.REHEARSAL_VERBOSE) process.stderr.write(text);
    });
    child.on("error", reject);
    child.on("close", () => {
      const last = stdout.trim().split("\n").pop() ?? "";
      try {
        resolve({ result: JSON.parse(last) as RehearsalResult, output: stdout + stderr });
      } catch {
        reject(new Error(`rehearsal printed no result; its output ends:\n${(stdout + stderr).slice(-3000)}`));
      }
    });
  });
}
