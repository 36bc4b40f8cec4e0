// k3s logs logrus lines to stderr; journald captures them. Never pass a token or password here.
export type Level = "info" | "warning" | "error" | "fatal";

export function log(level: Level, msg: string): void {
  const time = new Date().toISOString();
  process.stderr.write(`time="${time}" level=${level} msg="${msg.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"\n`);
}

export function fatal(msg: string, code = 1): never {
  log("fatal", msg);
  process.exit(code);
}
