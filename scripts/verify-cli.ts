// verify-server-token-ready: prove a k3s server's join token is ready before agents use it.
// Exit 0 with `TOKEN:<token>` as stdout's last line; 1 when a step fails (named); 2 on a usage error.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { verifyServerToken, redact, VerifyOptions } from "../components/verify";

const USAGE = `usage: verify-server-token-ready.sh <server_ip> <ssh_user> [ssh_key_path]
  [--ssh-port N] [--api-port N] [--data-dir PATH] [--node-name NAME]
  [--timeout S (30-600, default 300)] [--interval S (accepted, unused: the server reports changes itself)]
  [--expected-host-key SHA256:...] [--json]`;

class UsageError extends Error {}

function num(flag: string, v: string | undefined, rule: (n: number) => boolean, what: string): number {
  const n = Number(v);
  if (v === undefined || v === "" || !Number.isFinite(n) || !rule(n)) throw new UsageError(`${flag} ${JSON.stringify(v ?? "")}: ${what}`);
  return n;
}

function parseArgs(argv: string[]): { opts: VerifyOptions; json: boolean } {
  const pos: string[] = [];
  let json = false;
  const o: Partial<VerifyOptions> = { timeoutSeconds: 300, intervalSeconds: 2 };
  const port = (n: number) => Number.isInteger(n) && n > 0 && n < 65536;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`); return argv[++i]; };
    switch (a) {
      case "--json": json = true; break;
      case "--ssh-port": o.sshPort = num(a, val(), port, "must be a port number 1-65535"); break;
      case "--api-port": o.apiPort = num(a, val(), port, "must be a port number 1-65535"); break;
      case "--data-dir": o.dataDir = val(); if (!o.dataDir.startsWith("/")) throw new UsageError(`--data-dir ${JSON.stringify(o.dataDir)}: must be an absolute path`); break;
      case "--node-name": o.nodeName = val(); break;
      case "--expected-host-key": o.expectedHostKey = val(); break;
      case "--timeout": o.timeoutSeconds = num(a, val(), (n) => n >= 30 && n <= 600, "must be between 30 and 600 seconds"); break;
      case "--interval": o.intervalSeconds = num(a, val(), (n) => n > 0 && n <= 60, "must be a number of seconds > 0 and <= 60"); break;
      case "-h": case "--help": throw new UsageError("");
      default:
        if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
        pos.push(a);
    }
  }
  if (pos.length < 2 || pos.length > 3) throw new UsageError("expected <server_ip> <ssh_user> [ssh_key_path]");
  const keyPath = pos[2] ?? path.join(os.homedir(), ".ssh", "id_rsa");
  let privateKey: string;
  try { privateKey = fs.readFileSync(keyPath, "utf8"); } catch (err) {
    throw new UsageError(`ssh_key_path ${JSON.stringify(keyPath)}: cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  return { opts: { ...o, host: pos[0], username: pos[1], privateKey } as VerifyOptions, json };
}

async function main(): Promise<number> {
  let parsed: { opts: VerifyOptions; json: boolean };
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) process.stderr.write(`error: ${err.message}\n`);
      process.stderr.write(USAGE + "\n");
      return 2;
    }
    throw err;
  }
  const { opts, json } = parsed;
  opts.onProgress = (line) => process.stderr.write(line + "\n");
  const report = await verifyServerToken(opts);
  if (json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  if (!report.ok) {
    const s = report.steps.find((x) => !x.ok);
    process.stderr.write(`❌ step ${report.failedStep} (${s?.name}) failed: ${s?.detail}\n`);
    return 1;
  }
  process.stderr.write(`✅ server ${report.serverUrl} is ready for agents (host key ${report.hostKeyFingerprint})\n`);
  process.stdout.write(`TOKEN:${report.token}\n`);
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write(`error: ${redact(err instanceof Error ? err.message : String(err), [])}\n`);
  process.exitCode = 1;
});
