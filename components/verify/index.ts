// Seven-step verification that a k3s server's join token is complete and proven to work, over one SSH
// connection: step 1 here, steps 2-7 by the node-side check on the server (node-check.ts), whose events
// become the same report and progress lines. Closure-serialisable for a Pulumi dynamic provider: modules
// are captured, never native function values, and no secret lives at module level.
import { SshSession, HostKeyMismatch } from "./ssh-session";
import { retryUntil, StepFailure } from "./retry";
import { redact } from "./redact";
import { runNodeCheck, CHECK_TICK_S, NodeCheckResult } from "./node-check";
import { STEP_NAMES, VerifyOptions, StepResult, VerificationReport } from "./report";

export { parseToken, ParsedToken } from "./token";
export { redact } from "./redact";
export { CHECK_TICK_S, checkCommand } from "./node-check";
export { CHECK_SCRIPT } from "./check-script";
export { VerifyOptions, StepResult, VerificationReport, STEP_NAMES } from "./report";

/** Step 1 tries to connect again this often: on its own schedule, not the configured polling interval. */
export const SSH_RETRY_S = 0.25;

export function validateOptions(o: VerifyOptions): void {
  const bad = (k: string, v: unknown, rule: string) => { throw new Error(`invalid ${k} ${JSON.stringify(v)}: ${rule}`); };
  if (!o.host) bad("host", o.host, "must be a host name or address");
  if (!o.username) bad("username", o.username, "must not be empty");
  if (!o.privateKey || !/PRIVATE KEY/.test(o.privateKey)) bad("privateKey", "<hidden>", "must be PEM/OpenSSH private key text");
  if (!(o.timeoutSeconds >= 30 && o.timeoutSeconds <= 600)) bad("timeoutSeconds", o.timeoutSeconds, "must be between 30 and 600");
  if (!(o.intervalSeconds > 0 && o.intervalSeconds <= o.timeoutSeconds)) bad("intervalSeconds", o.intervalSeconds, "must be > 0 and <= timeoutSeconds");
  for (const [k, v] of [["sshPort", o.sshPort], ["apiPort", o.apiPort]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0 && v < 65536)) bad(k, v, "must be a port number 1-65535");
  }
  if (o.expectedHostKey !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(o.expectedHostKey)) bad("expectedHostKey", o.expectedHostKey, "must be SHA256:<43 base64 characters>");
}

export async function verifyServerToken(opts: VerifyOptions): Promise<VerificationReport> {
  validateOptions(opts);
  const started = Date.now();
  const deadline = started + opts.timeoutSeconds * 1000;
  const apiPort = opts.apiPort ?? 6443;
  const ssh = new SshSession({
    host: opts.host, port: opts.sshPort ?? 22, username: opts.username, privateKey: opts.privateKey,
    expectedHostKey: opts.expectedHostKey, connectTimeoutMs: 10000,
  });
  let outcome: NodeCheckResult | undefined;
  const tokens: string[] = opts.expectedToken ? [opts.expectedToken] : [];
  const secrets = (): string[] => {
    const out: string[] = [];
    for (const t of tokens) {
      if (!t) continue;
      out.push(t);
      const i = t.lastIndexOf(":");
      if (i >= 0) out.push(t.slice(i + 1));
    }
    return out;
  };
  const say = (line: string) => { if (opts.onProgress) opts.onProgress(redact(line, secrets())); };
  const waiting = (n: number, every: string) => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    say(`⏳ [${n}/7] ${STEP_NAMES[n - 1]}: waiting up to ${left}s, ${every}`);
  };
  const results: StepResult[] = [];
  const record = (r: StepResult) => {
    const detail = redact(r.detail, secrets());
    results.push({ ...r, detail });
    say(`${r.ok ? "✅" : "❌"} [${r.step}/7] ${r.name}: ${detail} (${r.attempts} attempt${r.attempts === 1 ? "" : "s"}, ${r.ms} ms)`);
  };
  try {
    waiting(1, `retrying every ${SSH_RETRY_S}s`);
    const r = await retryUntil(deadline, SSH_RETRY_S * 1000, async () => {
      try {
        await ssh.connect();
      } catch (err) {
        if (err instanceof HostKeyMismatch) throw new StepFailure(err.message, true);
        throw err;
      }
      return `connected, host key ${ssh.hostKeyFingerprint}`;
    });
    record({ step: 1, name: STEP_NAMES[0], ok: r.ok, attempts: r.attempts, ms: r.ms, detail: r.ok ? String(r.value) : r.detail });
    if (r.ok) {
      outcome = await runNodeCheck({
        ssh, root: opts.username === "root", deadline, apiPort,
        dataDir: (opts.dataDir ?? "/var/lib/rancher/k3s").replace(/\/+$/, ""),
        nodeName: opts.nodeName, tlsName: opts.host, expectedToken: opts.expectedToken,
        onStart: (n) => waiting(n, `checking every ${CHECK_TICK_S}s on the server`),
        onEnd: record,
        onToken: (t) => { tokens.push(t); },
      });
    }
  } finally {
    ssh.close();
  }
  const failed = results.find((x) => !x.ok);
  const ok = !failed && outcome?.ok === true;
  return {
    ok, failedStep: failed?.step, serverUrl: `https://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${apiPort}`,
    caHash: outcome?.caHash ?? "", hostKeyFingerprint: ssh.hostKeyFingerprint, steps: results,
    token: ok ? outcome?.token : undefined, agentToken: ok ? outcome?.agentToken : undefined,
    sshConnections: ssh.connections,
  };
}
