// SSH for the node-side steps: dial until a deadline (a fresh instance refuses connections for a minute or
// two), check the host key against the one pinned at first contact, run one command with its stdin.
//
// Closure-serialisable: the RemoteCommand provider captures this module into the state, so it holds only
// plain functions and module references, never native function values or secrets.
import * as ssh2 from "ssh2";
import { fingerprint, HostKeyMismatch } from "../verify/ssh-session";

export interface Connection {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  /** `SHA256:…` of the node's host key; empty: trust the first key seen (first contact). */
  hostKey: string;
  /** Seconds to keep dialing while the node refuses or does not answer. */
  dialTimeout: number;
  /** The node's name, for messages. */
  node: string;
}

export interface Dialed {
  client: ssh2.Client;
  /** `SHA256:…` fingerprint of the key the node presented. */
  hostKey: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function dialOnce(c: Connection, timeoutMs: number): Promise<Dialed> {
  return new Promise<Dialed>((resolve, reject) => {
    const client = new ssh2.Client();
    let seen = "";
    client.on("ready", () => resolve({ client, hostKey: seen }));
    client.on("error", (err: Error) => {
      client.end();
      reject(c.hostKey && seen && seen !== c.hostKey
        ? new HostKeyMismatch(`${c.node} (${c.host}:${c.port}) presented host key ${seen}, not the pinned ${c.hostKey}: refusing to connect (a different machine, or a man in the middle)`)
        : err);
    });
    client.connect({
      host: c.host, port: c.port, username: c.user, privateKey: c.privateKey, readyTimeout: timeoutMs,
      keepaliveInterval: 5000, keepaliveCountMax: 6,
      hostVerifier: (key: Buffer) => {
        seen = fingerprint(key);
        return !c.hostKey || seen === c.hostKey;
      },
    });
    // Nagle's algorithm against the peer's delayed ACK costs ~40 ms per small write.
    client.setNoDelay(true);
  });
}

/**
 * Dials until `dialTimeout` seconds have passed. Refused, unreachable and not-yet-authorised connections
 * are retried (cloud-init installs the login key late); a host key other than the pinned one never is.
 */
export async function dial(c: Connection, say: (line: string) => void): Promise<Dialed> {
  const deadline = Date.now() + (c.dialTimeout > 0 ? c.dialTimeout : 300) * 1000;
  let delay = 250;
  let attempts = 0;
  let lastSaid = 0;
  for (;;) {
    attempts++;
    try {
      return await dialOnce(c, Math.max(5000, Math.min(30000, deadline - Date.now())));
    } catch (err) {
      if (err instanceof HostKeyMismatch) throw err;
      const reason = (err as Error).message;
      const left = Math.round((deadline - Date.now()) / 1000);
      if (left <= 0) {
        throw new Error(`${c.node}: no SSH session with ${c.user}@${c.host}:${c.port} within ${c.dialTimeout}s (${attempts} attempts): ${reason}`);
      }
      if (Date.now() - lastSaid > 15000) {
        say(`waiting for SSH on ${c.host}:${c.port} (up to ${left}s more): ${reason}`);
        lastSaid = Date.now();
      }
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
      delay = Math.min(delay * 1.5, 5000);
    }
  }
}

export interface ExecOptions {
  /**
   * Written to the command's stdin, then closed: a string, or a function opening a stream (an archive) —
   * opened only once the channel is, so nothing it produces is read before there is somewhere to send it.
   */
  stdin?: string | (() => NodeJS.ReadableStream);
  /** Local bound on the whole command; the command itself is also bounded on the node by `timeout`. */
  timeoutMs: number;
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
}

/** Runs `command` in one session channel; resolves with its exit code and output, never rejects for a non-zero exit. */
export function exec(client: ssh2.Client, command: string, o: ExecOptions): Promise<ExecResult> {
  return new Promise<ExecResult>((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      let stdout = "";
      let stderr = "";
      const timer = setTimeout(() => {
        // Closing the channel does not stop the command on the node, and OpenSSH ignores signal requests for
        // root sessions: every command is wrapped in the node's own `timeout` (bootstrap-scripts.ts), which
        // ends it shortly before this bound.
        ch.close();
        reject(new Error(`the command did not finish within ${Math.round(o.timeoutMs / 1000)}s; its own bound on the node (timeout) stops it`));
      }, o.timeoutMs);
      ch.on("data", (d: Buffer) => { const t = d.toString("utf8"); stdout += t; if (o.onStdout) o.onStdout(t); });
      ch.stderr.on("data", (d: Buffer) => { const t = d.toString("utf8"); stderr += t; if (o.onStderr) o.onStderr(t); });
      ch.on("close", (code: number | null, signal?: string) => {
        clearTimeout(timer);
        resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
      });
      if (o.stdin === undefined) ch.end();
      else if (typeof o.stdin === "string") ch.end(o.stdin);
      else {
        const source = o.stdin();
        source.on("error", (e: Error) => { ch.close(); reject(e); });
        source.pipe(ch);
      }
    });
  });
}
