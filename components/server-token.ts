// The token-verification resource: a dynamic provider around the seven-step check of components/verify.
// Its `create` returns the server's join token only once the server proved it works; agents and joining
// servers take their token from this resource's outputs, so they cannot start before it exists.
//
// The provider object below is closure-serialized into the state (`__provider`) and run by the engine's
// dynamic-provider host in a fresh process: it references only plain functions, the verify module and
// node built-ins — no config, no AWS resources, no captured secrets, no class expressions.
import * as pulumi from "@pulumi/pulumi";
import * as verify from "./verify";

/** The provider's view of the inputs (resolved, secrets decrypted). */
export interface ServerTokenProps {
  /** Identity of the server (EC2 instance id): a new server means a new token resource. */
  serverId: string;
  host: string;
  sshPort: number;
  username: string;
  privateKey: string;
  expectedHostKey?: string;
  apiPort: number;
  dataDir: string;
  nodeName?: string;
  timeoutSeconds: number;
  intervalSeconds: number;
  /** A user-supplied token the server must have taken (autoTokenSharing: false). */
  expectedToken?: string;
  /** Changes whenever the server's bootstrap re-ran: its token can have changed, so it is verified again. */
  revision: string;
}

/** Inputs whose change means "the server or its token can have changed": verify again. */
const REVERIFY_KEYS = ["host", "sshPort", "username", "expectedHostKey", "apiPort", "dataDir", "nodeName",
  "expectedToken", "revision"];
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function checkProps(news: any): { property: string; reason: string }[] {
  const failures: { property: string; reason: string }[] = [];
  const isUnknown = (v: unknown) => v === UNKNOWN;
  for (const key of ["serverId", "host", "username", "privateKey", "revision"]) {
    const v = news[key];
    if (!isUnknown(v) && (typeof v !== "string" || v.length === 0)) {
      failures.push({ property: key, reason: `${key} must be a non-empty string` });
    }
  }
  const t = news.timeoutSeconds;
  if (!isUnknown(t) && !(Number.isInteger(t) && t >= 30 && t <= 600)) {
    failures.push({ property: "timeoutSeconds", reason: `timeoutSeconds must be a whole number from 30 to 600 (got ${t})` });
  }
  const i = news.intervalSeconds;
  if (!isUnknown(i) && !(typeof i === "number" && i > 0 && (isUnknown(t) || i < t))) {
    failures.push({ property: "intervalSeconds", reason: `intervalSeconds must be above 0 and below timeoutSeconds (got ${i})` });
  }
  return failures;
}

/** The report as stored in plain state: every token removed, every detail redacted. */
function publicReport(report: verify.VerificationReport, secrets: string[]) {
  return {
    ok: report.ok,
    failedStep: report.failedStep,
    serverUrl: report.serverUrl,
    caHash: report.caHash,
    hostKeyFingerprint: report.hostKeyFingerprint,
    steps: report.steps.map((s) => ({ ...s, detail: verify.redact(s.detail, secrets) })),
  };
}

async function runVerification(p: ServerTokenProps) {
  const known = [p.expectedToken].filter((s): s is string => !!s);
  const report = await verify.verifyServerToken({
    host: p.host,
    sshPort: p.sshPort,
    username: p.username,
    privateKey: p.privateKey,
    expectedHostKey: p.expectedHostKey || undefined,
    apiPort: p.apiPort,
    dataDir: p.dataDir,
    nodeName: p.nodeName || undefined,
    timeoutSeconds: p.timeoutSeconds,
    intervalSeconds: p.intervalSeconds,
    expectedToken: p.expectedToken || undefined,
  }).catch((err: unknown) => {
    // The verifier reports failures in its report; a throw is unexpected — still never echo a token.
    throw new Error(verify.redact(`k3s server token verification of ${p.host} could not run: ${err instanceof Error ? err.message : String(err)}`, known));
  });
  const secrets = [report.token, report.agentToken, ...known].filter((s): s is string => !!s);
  if (!report.ok || !report.token) {
    const failed = report.steps.find((s) => !s.ok) ?? report.steps.find((s) => s.step === report.failedStep);
    const where = failed ? `step ${failed.step} (${failed.name}) failed after ${failed.attempts} attempt(s) in ${Math.round(failed.ms / 1000)}s: ${failed.detail}`
      : "the verifier returned no token";
    throw new Error(verify.redact(
      `k3s server token verification of ${p.host} within ${p.timeoutSeconds}s: ${where}`, secrets));
  }
  // The engine's provider host encodes outputs as a protobuf Struct, which has no `undefined`: drop them.
  return JSON.parse(JSON.stringify({
    // Echoed inputs: `diff` only sees old outputs.
    serverId: p.serverId,
    host: p.host,
    sshPort: p.sshPort,
    username: p.username,
    expectedHostKey: p.expectedHostKey ?? "",
    apiPort: p.apiPort,
    dataDir: p.dataDir,
    nodeName: p.nodeName ?? "",
    expectedToken: p.expectedToken ?? "",
    revision: p.revision,
    token: report.token,
    agentToken: report.agentToken ?? report.token,
    caHash: report.caHash,
    serverUrl: report.serverUrl,
    hostKeyFingerprint: report.hostKeyFingerprint,
    report: publicReport(report, secrets),
  }));
}

/** The dynamic provider. Exported for the serialization test; only ServerToken uses it. */
export const serverTokenProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: any, news: any) {
    return { inputs: news, failures: checkProps(news) };
  },
  async diff(_id: string, olds: any, news: any) {
    const unknown = (v: unknown) => v === UNKNOWN;
    if (unknown(news.serverId) || olds.serverId !== news.serverId) {
      return { changes: true, replaces: ["serverId"], deleteBeforeReplace: false };
    }
    const changed = REVERIFY_KEYS.filter((k) => unknown(news[k]) || (olds[k] ?? "") !== (news[k] ?? ""));
    return { changes: changed.length > 0 };
  },
  async create(inputs: any) {
    const outs = await runVerification(inputs as ServerTokenProps);
    return { id: `${outs.serverId}-token`, outs };
  },
  async update(_id: string, _olds: any, news: any) {
    return { outs: await runVerification(news as ServerTokenProps) };
  },
  async delete() {
    // The token belongs to the server; forgetting the verification changes nothing on it.
  },
};

export interface ServerTokenArgs {
  serverId: pulumi.Input<string>;
  host: pulumi.Input<string>;
  sshPort?: pulumi.Input<number>;
  username: pulumi.Input<string>;
  privateKey: pulumi.Input<string>;
  expectedHostKey?: pulumi.Input<string>;
  apiPort?: pulumi.Input<number>;
  dataDir?: pulumi.Input<string>;
  nodeName?: pulumi.Input<string>;
  /** `tokenTimeout`: the whole verification's deadline (dynamic providers ignore customTimeouts). */
  timeoutSeconds: pulumi.Input<number>;
  intervalSeconds: pulumi.Input<number>;
  expectedToken?: pulumi.Input<string>;
  revision: pulumi.Input<string>;
}

/** Per-step report without tokens, as stored in state. */
export interface PublicVerificationReport {
  ok: boolean;
  failedStep?: number;
  serverUrl: string;
  caHash: string;
  hostKeyFingerprint: string;
  steps: verify.StepResult[];
}

export const SERVER_TOKEN_SECRET_OUTPUTS = ["token", "agentToken", "expectedToken"];

export class ServerToken extends pulumi.dynamic.Resource {
  declare readonly token: pulumi.Output<string>;
  declare readonly agentToken: pulumi.Output<string>;
  declare readonly caHash: pulumi.Output<string>;
  declare readonly serverUrl: pulumi.Output<string>;
  declare readonly hostKeyFingerprint: pulumi.Output<string>;
  declare readonly report: pulumi.Output<PublicVerificationReport>;

  constructor(name: string, args: ServerTokenArgs, opts?: pulumi.CustomResourceOptions) {
    super(serverTokenProvider, name, {
      serverId: args.serverId,
      host: args.host,
      sshPort: args.sshPort ?? 22,
      username: args.username,
      privateKey: pulumi.secret(args.privateKey),
      expectedHostKey: args.expectedHostKey ?? "",
      apiPort: args.apiPort ?? 6443,
      dataDir: args.dataDir ?? "/var/lib/rancher/k3s",
      nodeName: args.nodeName ?? "",
      timeoutSeconds: args.timeoutSeconds,
      intervalSeconds: args.intervalSeconds,
      expectedToken: args.expectedToken === undefined ? "" : pulumi.secret(args.expectedToken),
      revision: args.revision,
      token: undefined,
      agentToken: undefined,
      caHash: undefined,
      serverUrl: undefined,
      hostKeyFingerprint: undefined,
      report: undefined,
    }, pulumi.mergeOptions(opts, { additionalSecretOutputs: SERVER_TOKEN_SECRET_OUTPUTS }), "k3s", "ServerToken");
  }
}
