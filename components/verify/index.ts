// Seven-step verification that a k3s server's join token is complete and proven to work, over one SSH
// connection. Closure-serialisable for a Pulumi dynamic provider: modules are captured, never native
// function values, and no secret lives at module level.
import { SshSession, HostKeyMismatch } from "./ssh-session";
import { retryUntil, StepFailure } from "./retry";
import { redact } from "./redact";
import * as steps from "./steps";
import { STEP_NAMES, VerifyOptions, StepResult, VerificationReport } from "./report";

export { parseToken, ParsedToken } from "./token";
export { redact } from "./redact";
export { NODE_READY_JSONPATH } from "./steps";
export { VerifyOptions, StepResult, VerificationReport, STEP_NAMES } from "./report";

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
  const intervalMs = opts.intervalSeconds * 1000;
  const apiPort = opts.apiPort ?? 6443;
  const ssh = new SshSession({
    host: opts.host, port: opts.sshPort ?? 22, username: opts.username, privateKey: opts.privateKey,
    expectedHostKey: opts.expectedHostKey, connectTimeoutMs: 10000,
  });
  const ctx: steps.StepContext = {
    ssh, host: opts.host, apiPort, dataDir: (opts.dataDir ?? "/var/lib/rancher/k3s").replace(/\/+$/, ""),
    nodeName: opts.nodeName, root: opts.username === "root", expectedToken: opts.expectedToken,
    commandTimeoutMs: 15000,
  };
  const secrets = (): string[] => {
    const out: string[] = [];
    for (const t of [ctx.token, ctx.agentToken, opts.expectedToken]) {
      if (!t) continue;
      out.push(t);
      const i = t.lastIndexOf(":");
      if (i >= 0) out.push(t.slice(i + 1));
    }
    return out;
  };
  const say = (line: string) => { if (opts.onProgress) opts.onProgress(redact(line, secrets())); };
  const fns = [steps.sshConnectivity, steps.serviceActive, steps.nodeReady, steps.tokenAvailable,
    steps.tokenFormat, steps.authentication, steps.apiAccessible];
  const results: StepResult[] = [];
  let failedStep: number | undefined;
  try {
    for (let i = 0; i < fns.length; i++) {
      const n = i + 1;
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      say(`⏳ [${n}/7] ${STEP_NAMES[i]}: waiting up to ${left}s, polling every ${opts.intervalSeconds}s`);
      const r = await retryUntil(deadline, intervalMs, async () => {
        try {
          return await fns[i](ctx);
        } catch (err) {
          if (err instanceof HostKeyMismatch) throw new StepFailure(err.message, true);
          throw err;
        }
      });
      const detail = redact(r.ok ? String(r.value) : r.detail, secrets());
      results.push({ step: n, name: STEP_NAMES[i], ok: r.ok, attempts: r.attempts, ms: r.ms, detail });
      say(`${r.ok ? "✅" : "❌"} [${n}/7] ${STEP_NAMES[i]}: ${detail} (${r.attempts} attempt${r.attempts === 1 ? "" : "s"}, ${r.ms} ms)`);
      if (!r.ok) { failedStep = n; break; }
    }
  } finally {
    ssh.close();
  }
  const ok = failedStep === undefined;
  return {
    ok, failedStep, serverUrl: `https://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${apiPort}`,
    caHash: ctx.caHash ?? "", hostKeyFingerprint: ssh.hostKeyFingerprint, steps: results,
    token: ok ? ctx.token : undefined, agentToken: ok ? ctx.agentToken : undefined,
    sshConnections: ssh.connections,
  };
}
