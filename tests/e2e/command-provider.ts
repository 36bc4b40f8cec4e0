// Carries out @pulumi/command's remote.Command and remote.CopyToRemote the way the provider does
// (pulumi-command 1.2.1, Go's x/crypto/ssh): dial with retries bounded by dialErrorLimit and
// perDialTimeout, one SSH session per command, stdin written then closed, environment as SSH env
// requests (which stock sshd refuses for anything but LANG and LC_*), output streamed to the log
// unless `logging` says otherwise, and SFTP for copies.
import { Client, type ConnectConfig, type SFTPWrapper } from "ssh2";
import * as fs from "node:fs";
import * as path from "node:path";
import * as crypto from "node:crypto";

export interface Connection {
  host: string;
  port?: number;
  user?: string;
  privateKey?: string;
  hostKey?: string;
  dialErrorLimit?: number;
  perDialTimeout?: number;
}

export interface CommandInputs {
  connection: Connection;
  create?: string;
  stdin?: string;
  environment?: Record<string, string>;
  logging?: "stdout" | "stderr" | "stdoutAndStderr" | "none";
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Where the rehearsal sends what `pulumi up` would print for a resource. */
export type EngineLog = (resource: string, line: string) => void;

const ALLOWED_ENV = /^(LANG|LC_[A-Z_]+)$/;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function hostKeyMatches(expected: string, key: Buffer): boolean {
  // The provider takes an authorized_keys-style line ("ssh-ed25519 AAAA…") or the bare base64 blob.
  const blob = expected.trim().split(/\s+/).find((part) => part.startsWith("AAAA")) ?? expected.trim();
  return blob === key.toString("base64");
}

/** Dials like the provider: up to dialErrorLimit failures, 100 ms backoff growing ×1.5 to 5 s. */
export async function dial(conn: Connection, log?: (line: string) => void): Promise<Client> {
  const limit = conn.dialErrorLimit ?? 10;
  const perDialMs = (conn.perDialTimeout ?? 15) * 1000;
  let delay = 100;
  let lastError: Error | undefined;
  for (let attempt = 1; limit < 0 || attempt <= limit; attempt++) {
    try {
      return await dialOnce(conn, perDialMs);
    } catch (err) {
      lastError = err as Error;
      if (/host key/i.test(lastError.message)) throw lastError;
      log?.(`dial ${conn.host}:${conn.port ?? 22} failed (attempt ${attempt}/${limit}): ${lastError.message}`);
      await sleep(delay);
      delay = Math.min(delay * 1.5, 5000);
    }
  }
  throw new Error(`failed to dial ${conn.host}:${conn.port ?? 22} after ${limit} attempts: ${lastError?.message}`);
}

function dialOnce(conn: Connection, timeoutMs: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let hostKeyRefused = false;
    const config: ConnectConfig = {
      host: conn.host,
      port: conn.port ?? 22,
      username: conn.user ?? "root",
      privateKey: conn.privateKey,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        if (!conn.hostKey) return true;
        hostKeyRefused = !hostKeyMatches(conn.hostKey, key);
        return !hostKeyRefused;
      },
    };
    client.once("ready", () => resolve(client));
    client.once("error", (err) => {
      client.end();
      reject(hostKeyRefused ? new Error("ssh: host key mismatch") : err);
    });
    client.connect(config);
    // Go's net.Dial, which the provider uses, turns Nagle's algorithm off on every TCP connection.
    client.setNoDelay(true);
  });
}

/** remote.Command's create: runs `create` in one session and returns its output. */
export async function runCommand(name: string, inputs: CommandInputs, log: EngineLog): Promise<CommandResult> {
  const command = inputs.create;
  if (!command) return { stdout: "", stderr: "" };
  const refused = Object.keys(inputs.environment ?? {}).filter((key) => !ALLOWED_ENV.test(key));
  if (refused.length > 0) {
    // What Go's session.Setenv reports when sshd's AcceptEnv does not list the variable.
    throw new Error(`ssh: setenv failed (${refused.join(", ")}): sshd accepts only LANG and LC_*`);
  }
  const client = await dial(inputs.connection, (line) => log(name, line));
  try {
    return await new Promise<CommandResult>((resolve, reject) => {
      client.exec(command, { env: inputs.environment }, (err, stream) => {
        if (err) return reject(err);
        let stdout = "";
        let stderr = "";
        const logging = inputs.logging ?? "stdoutAndStderr";
        const streamTo = (text: string, which: "stdout" | "stderr") => {
          const shown =
            logging === "stdoutAndStderr" || logging === which;
          if (!shown) return;
          for (const line of text.split("\n")) if (line.length > 0) log(name, line);
        };
        stream.on("data", (chunk: Buffer) => {
          const text = chunk.toString("utf8");
          stdout += text;
          streamTo(text, "stdout");
        });
        stream.stderr.on("data", (chunk: Buffer) => {
          const text = chunk.toString("utf8");
          stderr += text;
          streamTo(text, "stderr");
        });
        stream.on("close", (code: number | null, signal?: string) => {
          if (code === 0) return resolve({ stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, "") });
          // The provider's failure message carries the command text and its output.
          reject(
            new Error(
              `Process exited with status ${code ?? signal}: running ${JSON.stringify(command)}:\n` +
                `stdout: ${stdout}\nstderr: ${stderr}`,
            ),
          );
        });
        if (inputs.stdin !== undefined) stream.end(inputs.stdin);
        else stream.end();
      });
    });
  } finally {
    client.end();
  }
}

function sftpOf(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
}

function statRemote(sftp: SFTPWrapper, p: string): Promise<fs.Stats | undefined> {
  return new Promise((resolve) => sftp.stat(p, (err, stats) => resolve(err ? undefined : (stats as unknown as fs.Stats))));
}

function mkdirRemote(sftp: SFTPWrapper, p: string): Promise<void> {
  return new Promise((resolve, reject) =>
    sftp.mkdir(p, (err) => (err && !/exist|failure/i.test(err.message) ? reject(err) : resolve())),
  );
}

async function mkdirpRemote(sftp: SFTPWrapper, dir: string): Promise<void> {
  const parts = dir.split("/").filter(Boolean);
  let current = dir.startsWith("/") ? "" : ".";
  for (const part of parts) {
    current = `${current}/${part}`;
    if (!(await statRemote(sftp, current))) await mkdirRemote(sftp, current);
  }
}

function putFile(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
  const mode = fs.statSync(local).mode & 0o777;
  return new Promise((resolve, reject) => sftp.fastPut(local, remote, { mode }, (err) => (err ? reject(err) : resolve())));
}

async function putTree(sftp: SFTPWrapper, local: string, remote: string): Promise<number> {
  await mkdirpRemote(sftp, remote);
  let files = 0;
  for (const entry of fs.readdirSync(local, { withFileTypes: true })) {
    const from = path.join(local, entry.name);
    const to = `${remote}/${entry.name}`;
    if (entry.isDirectory()) files += await putTree(sftp, from, to);
    else if (entry.isFile()) {
      await putFile(sftp, from, to);
      files++;
    }
  }
  return files;
}

/**
 * remote.CopyToRemote's create: a FileAsset or a directory FileArchive, copied by SFTP as the SSH user.
 * An existing remote directory receives the source inside it; otherwise the source lands at remotePath.
 */
export async function copyToRemote(
  name: string,
  inputs: { connection: Connection; source: { path?: string | Promise<string>; text?: string | Promise<string> }; remotePath: string },
  log: EngineLog,
): Promise<{ files: number }> {
  // Pulumi assets hold their path or text as promises until serialized.
  const source = { path: await inputs.source.path, text: await inputs.source.text };
  const client = await dial(inputs.connection, (line) => log(name, line));
  try {
    const sftp = await sftpOf(client);
    let target = inputs.remotePath;
    const existing = await statRemote(sftp, target);
    if (source.text !== undefined) {
      const tmp = path.join(fs.mkdtempSync("/tmp/k3s-e2e-asset-"), "asset");
      fs.writeFileSync(tmp, source.text);
      await mkdirpRemote(sftp, path.posix.dirname(target));
      await putFile(sftp, tmp, target);
      return { files: 1 };
    }
    if (!source.path) throw new Error(`${name}: CopyToRemote source has neither path nor text`);
    const local = path.resolve(source.path);
    if (existing && (existing as unknown as { isDirectory(): boolean }).isDirectory()) {
      target = `${target}/${path.basename(local)}`;
    }
    if (fs.statSync(local).isDirectory()) {
      const files = await putTree(sftp, local, target);
      log(name, `copied ${files} files to ${inputs.connection.host}:${target}`);
      return { files };
    }
    await mkdirpRemote(sftp, path.posix.dirname(target));
    await putFile(sftp, local, target);
    log(name, `copied 1 file to ${inputs.connection.host}:${target}`);
    return { files: 1 };
  } finally {
    client.end();
  }
}

/** A stable id the way the provider derives one: random, as resource ids are opaque. */
export function newId(prefix: string): string {
  return `${prefix}-${crypto.randomBytes(4).toString("hex")}`;
}
