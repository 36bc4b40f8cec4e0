// Runs a command over an SSH exec channel with optional stdin, and uploads a directory over SFTP — the two
// things @pulumi/command's remote.Command and CopyToRemote do with a connection.
import * as fs from "node:fs";
import * as path from "node:path";
import { Client, SFTPWrapper } from "ssh2";

export interface ExecResult { code: number; stdout: string; stderr: string }

export function sshExec(ssh: Client, command: string, stdin?: string, env?: Record<string, string>): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    ssh.exec(command, env ? { env } : {}, (err, ch) => {
      if (err) return reject(err);
      let stdout = "", stderr = "";
      ch.on("data", (d: Buffer) => { stdout += d; });
      ch.stderr.on("data", (d: Buffer) => { stderr += d; });
      ch.on("close", (code: number) => resolve({ code, stdout, stderr }));
      if (stdin !== undefined) ch.end(stdin); else ch.end();
    });
  });
}

/** Copies a local directory tree to `remote` (which must not exist yet) as the SSH user. */
export async function sftpUploadDir(ssh: Client, local: string, remote: string): Promise<void> {
  const sftp: SFTPWrapper = await new Promise((res, rej) => ssh.sftp((e, s) => (e ? rej(e) : res(s))));
  const put = async (l: string, r: string): Promise<void> => {
    if (fs.statSync(l).isDirectory()) {
      await new Promise<void>((res, rej) => sftp.mkdir(r, (e) => (e ? rej(e) : res())));
      for (const entry of fs.readdirSync(l)) await put(path.join(l, entry), `${r}/${entry}`);
    } else {
      await new Promise<void>((res, rej) => sftp.fastPut(l, r, (e) => (e ? rej(e) : res())));
    }
  };
  try {
    await put(local, remote);
  } finally {
    sftp.end();
  }
}
