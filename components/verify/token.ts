// The k3s join-token grammar, with k3s's own parse messages so operators recognise them.
export interface ParsedToken {
  kind: "secure" | "bootstrap" | "short";
  caHash?: string;      // 64 lower-case hex: sha256 of the cluster CA served at /cacerts
  username?: string;
  password: string;
}

const HASH = /^[0-9a-f]{64}$/;
const BOOTSTRAP = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;

export function parseToken(text: string): ParsedToken {
  const t = text.trim();
  if (t === "") throw new Error("token must not be empty");
  if (!t.startsWith("K10")) {
    // A bare password (or user:password) carries no CA hash, so it cannot pin the cluster CA.
    const i = t.indexOf(":");
    return i < 0 ? { kind: "short", password: t } : { kind: "short", username: t.slice(0, i), password: t.slice(i + 1) };
  }
  const sep = t.indexOf("::");
  if (sep < 0) throw new Error("invalid token format");
  const hash = t.slice(3, sep);
  if (hash.length !== 64) throw new Error("invalid token CA hash length");
  if (!HASH.test(hash)) throw new Error("invalid token format");
  const creds = t.slice(sep + 2);
  if (BOOTSTRAP.test(creds)) return { kind: "bootstrap", caHash: hash, password: creds };
  const i = creds.indexOf(":");
  if (i <= 0 || i === creds.length - 1) throw new Error("invalid token format");
  return { kind: "secure", caHash: hash, username: creds.slice(0, i), password: creds.slice(i + 1) };
}
