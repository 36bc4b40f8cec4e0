import * as crypto from "node:crypto";
import * as fs from "node:fs";

// The grammar of pkg/clientaccess/token.go, with k3s's own error messages.
export interface ParsedToken {
  caHash?: string;
  username?: string;
  password: string;
}

export function parseToken(raw: string): ParsedToken {
  const token = raw.trim();
  if (token === "") throw new Error("token must not be empty");
  if (!token.startsWith("K10")) return { password: token };
  const sep = token.indexOf("::");
  if (sep < 0) throw new Error("invalid token format");
  const caHash = token.slice(3, sep);
  if (caHash.length !== 64) throw new Error("invalid token CA hash length");
  const creds = token.slice(sep + 2);
  const colon = creds.indexOf(":");
  if (colon > 0) return { caHash, username: creds.slice(0, colon), password: creds.slice(colon + 1) };
  if (/^[a-z0-9]{6}\.[a-z0-9]{16}$/.test(creds)) return { caHash, password: creds };
  throw new Error("invalid token format");
}

export function formatToken(caHash: string, username: string, password: string): string {
  return `K10${caHash}::${username}:${password}`;
}

export function caHashOf(cacerts: Buffer | string): string {
  return crypto.createHash("sha256").update(cacerts).digest("hex");
}

export function newPassword(): string {
  return crypto.randomBytes(16).toString("hex");
}

/** A token or passwd file: written whole under another name, then renamed, so a reader never sees half of it. */
export function writeSecret(file: string, content: string): void {
  const tmp = `${file}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}
