// Steps 2-7 run on the server by the node-side check (puppet/modules/k3s_cluster/files/k3s-cluster-check.sh,
// inlined as CHECK_SCRIPT): one `bash -s` on one exec channel of the verification's SSH connection checks
// locally every 0.1 s and streams an event when a step passes or fails, so a change is known here within
// one check of it happening, whatever the configured polling interval. The tokens travel only on that
// channel's stdout; the expected token only on its stdin.
import type * as ssh2 from "ssh2";
import { SshSession } from "./ssh-session";
import { CHECK_SCRIPT } from "./check-script";
import { StepResult, STEP_NAMES } from "./report";

/** How often the check looks again at a waiting step, as the script says (`readonly TICK=…`). */
export const CHECK_TICK_S = Number(/^readonly TICK=([0-9.]+)/m.exec(CHECK_SCRIPT)?.[1]);

/** After the deadline, how long the script may take to report its own timeout before it is stopped here. */
const GRACE_MS = 5000;
/** How long a stopped script (stdin closed) has to exit before its channel is closed under it. */
const STOP_MS = 1000;
/** Pause between reconnection attempts after the connection dropped mid-check. */
const RECONNECT_MS = 250;

export interface NodeCheckParams {
  ssh: SshSession;
  /** The SSH user is root; otherwise the check runs under `sudo -n` (or unprivileged when sudo refuses). */
  root: boolean;
  deadline: number;
  apiPort: number;
  dataDir: string;
  nodeName?: string;
  /** The address the verifier reached the server by: the server certificate must name it. */
  tlsName: string;
  expectedToken?: string;
  /** A step (2-7) starts waiting. */
  onStart: (step: number) => void;
  /** A step (2-7) ended; nothing follows a failed one. */
  onEnd: (result: StepResult) => void;
  /** A token arrived from the server: from now on it is a secret to redact. */
  onToken: (token: string) => void;
}

export interface NodeCheckResult { ok: boolean; token?: string; agentToken?: string; caHash?: string }

function sq(s: string): string { return "'" + s.replace(/'/g, "'\\''") + "'"; }

/** The remote command: the script comes on stdin, so a server without the Puppet module works too. */
export function checkCommand(p: Pick<NodeCheckParams, "root" | "deadline" | "apiPort" | "dataDir" | "nodeName" | "tlsName" | "expectedToken">): string {
  const left = Math.max(0, p.deadline - Date.now()) / 1000;
  const args = ["--events", "--data-dir", sq(p.dataDir), "--api-port", String(p.apiPort), "--tls-name", sq(p.tlsName),
    "--timeout", left.toFixed(3)];
  if (p.nodeName) args.push("--node-name", sq(p.nodeName));
  if (p.expectedToken) args.push("--expected-token-stdin");
  const run = `bash -s -- ${args.join(" ")}`;
  if (p.root) return run;
  // Elevated once for the whole check; when sudo refuses, the check still runs and step 3 says why.
  return `if sudo -n true </dev/null 2>/dev/null; then exec sudo -n ${run}; else exec ${run}; fi`;
}

interface State {
  step: number;            // the step waiting for its outcome
  startedAt: number;       // when it started, here
  carried: number;         // its attempts in runs that a dropped connection cut short
  attempts: number;        // its attempts in this run, as last reported
  lastWait: string;        // why it was still waiting, as last reported
  result?: NodeCheckResult;
  token?: string; agentToken?: string; caHash?: string;
}

type RunEnd = "decided" | "dropped" | "ended" | "overdue";
interface Run { end: RunEnd; code?: number | null; signal?: string; stderr: string }

function seconds(ms: number): number { return Math.round(ms / 1000); }

/** `ms`: the script's own timing of the step; undefined (or a step resumed after a reconnection) is timed here. */
function endStep(p: NodeCheckParams, st: State, ok: boolean, attempts: number, detail: string, ms?: number): void {
  const took = ms !== undefined && st.carried === 0 ? ms : Date.now() - st.startedAt;
  p.onEnd({ step: st.step, name: STEP_NAMES[st.step - 1], ok, attempts: st.carried + attempts, ms: took, detail });
  if (!ok) { st.result = { ok: false }; return; }
  if (st.step === 7) { st.result = { ok: true, token: st.token, agentToken: st.agentToken, caHash: st.caHash }; return; }
  st.step++;
  st.startedAt = Date.now();
  st.carried = 0;
  st.attempts = 0;
  st.lastWait = "";
  p.onStart(st.step);
}

// One event line of the script (see the script's header for the protocol).
function onEvent(p: NodeCheckParams, st: State, line: string): void {
  // A run after a reconnection passes the steps decided before again: only the current step counts.
  const w = /^wait ([2-7]) (\d+) (.*)$/.exec(line);
  if (w) {
    if (Number(w[1]) === st.step && !st.result) { st.attempts = Number(w[2]); st.lastWait = w[3]; }
    return;
  }
  const m = /^(pass|fail) ([2-7]) (\d+) (\d+) (.*)$/.exec(line);
  if (m) {
    if (Number(m[2]) === st.step && !st.result) endStep(p, st, m[1] === "pass", Number(m[3]), m[5], Number(m[4]));
    return;
  }
  const kv = /^(token|agent-token|ca-hash) (\S+)$/.exec(line);
  if (kv) {
    if (kv[1] === "ca-hash") { st.caHash = kv[2]; return; }
    p.onToken(kv[2]);
    if (kv[1] === "token") st.token = kv[2];
    else st.agentToken = kv[2];
  }
}

/** One run of the script on one channel, until it exits, its connection drops or it is overdue. */
function runOnce(p: NodeCheckParams, st: State, ch: ssh2.ClientChannel): Promise<Run> {
  return new Promise<Run>((resolve) => {
    let buffered = "";
    let stderr = "";
    let exit: { code?: number | null; signal?: string } | undefined;
    let overdue = false;
    let stopTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (stopTimer) return;
      ch.end();
      stopTimer = setTimeout(() => ch.close(), STOP_MS);
    };
    const guard = setTimeout(() => { overdue = true; stop(); }, Math.max(0, p.deadline + GRACE_MS - Date.now()));
    ch.on("data", (d: Buffer) => {
      buffered += d.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const decided = st.result !== undefined;
        onEvent(p, st, line);
        // Decided: the script exits by itself; its stdin closing, then its channel, make sure it does.
        if (!decided && st.result) stop();
      }
    });
    ch.stderr.on("data", (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString("utf8"); });
    // A channel whose connection died errors on write; its close (handled below) says what happened.
    ch.on("error", () => undefined);
    ch.on("exit", (code: number | null, signal?: string) => { exit = { code, signal }; });
    ch.on("close", () => {
      clearTimeout(guard);
      if (stopTimer) clearTimeout(stopTimer);
      const end: RunEnd = st.result ? "decided" : overdue ? "overdue" : exit ? "ended" : "dropped";
      resolve({ end, code: exit?.code, signal: exit?.signal, stderr });
    });
    ch.write(CHECK_SCRIPT);
    if (p.expectedToken) ch.write(p.expectedToken.trim() + "\n");
  });
}

/** Runs steps 2-7 on the server, reporting each through onStart/onEnd; reconnects if the connection drops. */
export async function runNodeCheck(p: NodeCheckParams): Promise<NodeCheckResult> {
  const st: State = { step: 2, startedAt: Date.now(), carried: 0, attempts: 0, lastWait: "" };
  p.onStart(2);
  let lostBecause = "";
  while (!st.result) {
    const late = Date.now() - p.deadline;
    if (late > 0) {
      const why = st.lastWait || (lostBecause ? `SSH connection lost (${lostBecause})` : "no answer from the check on the server");
      endStep(p, st, false, Math.max(st.attempts, 1), `timed out after ${seconds(Date.now() - st.startedAt)} s: ${why}`);
      break;
    }
    let ch: ssh2.ClientChannel;
    try {
      ch = await p.ssh.start(checkCommand(p));
    } catch (err) {
      lostBecause = (err as Error).message;
      p.ssh.close();
      await new Promise((r) => setTimeout(r, Math.min(RECONNECT_MS, Math.max(0, p.deadline - Date.now()) + 1)));
      continue;
    }
    const run = await runOnce(p, st, ch);
    if (run.end === "decided") break;
    if (run.end === "dropped") {
      // The server side ends with its channel (stdin closes); a new connection starts the check again.
      st.carried += st.attempts;
      st.attempts = 0;
      lostBecause = "the connection dropped";
      p.ssh.close();
      continue;
    }
    if (run.end === "overdue") {
      endStep(p, st, false, Math.max(st.attempts, 1),
        `timed out after ${seconds(Date.now() - st.startedAt)} s: ${st.lastWait || "the check on the server did not report"}`);
      break;
    }
    const said = run.stderr.trim().split("\n").filter((l) => l.trim() !== "").slice(-1)[0] ?? "";
    endStep(p, st, false, Math.max(st.attempts, 1),
      `the check on the server ended without a result (${run.signal ? `signal ${run.signal}` : `exit ${run.code}`}${said ? `: ${said.trim()}` : ""})`);
  }
  return st.result as NodeCheckResult;
}
