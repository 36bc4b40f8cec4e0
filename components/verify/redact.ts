// Every message that leaves the verifier passes through here: a token or password must never reach a log,
// an error or a terminal.
const TOKEN_LIKE = /K10[0-9a-fA-F]{0,64}::[^\s"']+/g;

export function redact(text: string, secrets: string[]): string {
  let out = String(text);
  const sorted = secrets.filter((s) => typeof s === "string" && s.length >= 4).sort((a, b) => b.length - a.length);
  for (const s of sorted) out = out.split(s).join("<redacted>");
  return out.replace(TOKEN_LIKE, "K10…::<redacted>");
}
