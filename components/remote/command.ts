// A step run on a node over SSH, as a resource of its own, so `pulumi up` shows where each node is and
// which step failed: `create` runs when the resource is created and again (or `update`) when its inputs
// change, `delete` when it is removed; `triggers` replace it. A dynamic provider: it runs inside the
// engine's Node.js provider host, so the program needs no provider binary besides its cloud's.
//
// Secrets: `stdin` (a join token, a manifest) and the connection's private key are secret inputs and
// echoed only as secret outputs; the command text never holds a secret. The first contact records the
// node's host key; a step given `connection.hostKey` refuses any other key before sending anything.
//
// The provider object below is closure-serialized into the state (`__provider`): it captures modules and
// plain functions only — no config, no resources, no class expressions, no secrets.
import { spawn } from "node:child_process";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as ssh from "./ssh";
import * as engineLog from "./engine-log";

const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export type Logging = "stdoutAndStderr" | "stderr" | "none";

/** The provider's view of the inputs: resolved, secrets decrypted. */
export interface RemoteCommandProps {
  /** URN of this resource, for the lines shown under it by `pulumi up` (`urn` itself is reserved by the SDK). */
  logUrn: string;
  connection: ssh.Connection;
  /** Command text run by the login shell; bounded on the node by `timeout` (see bootstrap-scripts.ts). */
  create: string;
  /** Run instead of `create` when inputs change; empty: `create` again. */
  update: string;
  /** Run when the resource is deleted (the node given back clean); empty: nothing. */
  delete: string;
  stdin: string;
  /** A local directory (relative to the project) streamed as a tar archive on stdin instead of `stdin`. */
  archiveDir: string;
  /** Digest of `archiveDir`'s files: a changed module re-runs the step. */
  archiveDigest: string;
  /** Seconds the local side waits for the command before giving up (the node-side `timeout` plus slack). */
  timeoutSeconds: number;
  logging: Logging;
  /** Keep stdout as an output (secret): for steps that read something back, like the kubeconfig. */
  captureStdout: boolean;
  triggers: unknown[];
  /** Values whose change re-runs the step in place. */
  rerunOn: unknown[];
  /** Optional: a re-run (never the first run) wrapped in commands on another node, a few at a time. */
  around?: Around | null;
}

/**
 * How a re-run is rolled through a group of nodes: `before` and `after` run on another node (a server that
 * cordons, drains and uncordons this one), and at most `limit` re-runs of the same `group` are in flight at
 * once. After one of them failed, those still waiting give up instead of taking another node down.
 */
export interface Around {
  connection: ssh.Connection;
  before: string;
  after: string;
  group: string;
  limit: number;
  /** Seconds `before` and `after` may each take (their node-side bound plus slack). */
  timeoutSeconds: number;
}

interface Slots {
  inFlight: number;
  waiting: (() => void)[];
  failed?: string;
}

/**
 * The group's slots. Every dynamic resource of a deployment runs in the one provider host process, so a
 * process-wide table is shared by all of them (each resource deserializes its own copy of this module).
 */
function slotsOf(group: string): Slots {
  const g = globalThis as unknown as { __k3sClusterSlots?: Map<string, Slots> };
  g.__k3sClusterSlots ??= new Map();
  let slots = g.__k3sClusterSlots.get(group);
  if (!slots) g.__k3sClusterSlots.set(group, (slots = { inFlight: 0, waiting: [] }));
  return slots;
}

/** Takes a slot of the group, waiting for one when all are taken; a released slot passes straight to a waiter. */
async function acquire(slots: Slots, limit: number, say: () => void): Promise<void> {
  if (slots.inFlight < limit) {
    slots.inFlight++;
    return;
  }
  say();
  await new Promise<void>((resolve) => slots.waiting.push(resolve));
}

function release(slots: Slots): void {
  const next = slots.waiting.shift();
  if (next) next();
  else slots.inFlight--;
}

async function rolled<T>(p: RemoteCommandProps, around: Around, run: () => Promise<T>): Promise<T> {
  const slots = slotsOf(around.group);
  const log = engineLog.engineLogger(p.logUrn);
  await acquire(slots, around.limit, () =>
    log.say(`waiting for one of ${around.limit} slot(s) of ${around.group} (a node at a time leaves while it changes)`, { ephemeral: true }));
  await log.flush();
  try {
    if (slots.failed) throw new Error(`${p.connection.node} was left as it is: ${slots.failed}`);
    // The commands on the other node have their own bound (waiting for servers, draining), not this step's.
    const onVia = { ...p, connection: around.connection, stdin: "", archiveDir: "", timeoutSeconds: around.timeoutSeconds };
    try {
      await runOn(onVia, around.before, "before update");
      const result = await run();
      await runOn(onVia, around.after, "after update");
      return result;
    } catch (err) {
      slots.failed ??= `${p.connection.node} failed its update: ${(err as Error).message.split("\n")[0]}`;
      throw err;
    }
  } finally {
    release(slots);
  }
}

/** Inputs whose change re-runs the step (`update`, or `create` again). A new `delete` is only stored. */
const RERUN_KEYS = ["create", "update", "stdin", "archiveDir", "archiveDigest", "timeoutSeconds", "logging", "captureStdout", "rerunOn"];

function isUnknown(v: unknown): boolean {
  return v === UNKNOWN;
}

function changed(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) !== JSON.stringify(b ?? null);
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Streams `dir` (relative to the project, where the engine starts this provider) as an uncompressed tar of
 * its contents, as the local `tar` writes it; a local failure ends the stream with an error naming it.
 */
function tarStream(dir: string): NodeJS.ReadableStream {
  const full = path.resolve(dir);
  const child = spawn("tar", ["-C", full, "--owner=0", "--group=0", "--numeric-owner", "-cf", "-", "."], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (d: Buffer) => { err += d.toString("utf8"); });
  child.on("close", (code) => {
    if (code !== 0) child.stdout.emit("error", new Error(`packing ${full} with tar failed (exit ${code}): ${err.trim()}`));
  });
  return child.stdout;
}

function lineSplitter(emit: (line: string) => void): { push(text: string): void; end(): void } {
  let buffered = "";
  return {
    push(text: string) {
      buffered += text;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) if (line.trim() !== "") emit(line);
    },
    end() {
      if (buffered.trim() !== "") emit(buffered);
      buffered = "";
    },
  };
}

/** Runs one of the step's commands on the node; returns its stdout and the host key seen. */
async function runOn(p: RemoteCommandProps, command: string, phase: string): Promise<{ stdout: string; hostKey: string }> {
  const log = engineLog.engineLogger(p.logUrn);
  const name = `${p.connection.node} ${phase}`;
  try {
    const dialed = await ssh.dial(p.connection, (line) => log.say(line, { ephemeral: true }));
    try {
      return await execOn(p, dialed, command, name, log);
    } catch (err) {
      // Every failure names the node and the phase; the step's own failures already do.
      const message = (err as Error).message;
      throw message.startsWith(name) ? err : new Error(`${name} on ${p.connection.host}: ${message}`);
    } finally {
      dialed.client.end();
    }
  } finally {
    await log.flush();
  }
}

async function execOn(p: RemoteCommandProps, dialed: ssh.Dialed, command: string, name: string,
  log: engineLog.EngineLogger): Promise<{ stdout: string; hostKey: string }> {
  const out = lineSplitter((line) => log.say(line));
  const err = lineSplitter((line) => log.say(line, { error: true }));
  const result = await ssh.exec(dialed.client, command, {
    stdin: p.archiveDir ? () => tarStream(p.archiveDir) : p.stdin,
    timeoutMs: p.timeoutSeconds * 1000,
    onStdout: p.logging === "stdoutAndStderr" ? (t) => out.push(t) : undefined,
    onStderr: p.logging !== "none" ? (t) => err.push(t) : undefined,
  });
  out.end();
  err.end();
  if (result.code !== 0) {
    // The step's own stderr says why; stdout is left out when it may hold what the step reads back.
    const why = p.logging === "none" ? "(output not shown for this step)" : tail(result.stderr, 15) || tail(result.stdout, 15);
    throw new Error(`${name} failed with exit code ${result.code} on ${p.connection.host}: ${why}`);
  }
  return { stdout: result.stdout, hostKey: dialed.hostKey };
}

function outputs(p: RemoteCommandProps, run: { stdout: string; hostKey: string }) {
  return {
    ...p,
    // From now on every connection of this step must meet the same key.
    connection: { ...p.connection, hostKey: p.connection.hostKey || run.hostKey },
    hostKey: run.hostKey,
    stdout: p.captureStdout ? run.stdout : "",
  };
}

/** The dynamic provider. Exported for the serialization tests; only RemoteCommand uses it. */
export const remoteCommandProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: any, news: any) {
    const failures: { property: string; reason: string }[] = [];
    const c = news.connection ?? {};
    if (!isUnknown(news.connection)) {
      for (const key of ["host", "user", "privateKey"]) {
        if (!isUnknown(c[key]) && (typeof c[key] !== "string" || c[key] === "")) {
          failures.push({ property: `connection.${key}`, reason: `connection.${key} must be a non-empty string` });
        }
      }
      if (!isUnknown(c.hostKey) && c.hostKey && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(c.hostKey)) {
        failures.push({ property: "connection.hostKey", reason: `connection.hostKey must be SHA256:<43 base64 characters> as ssh-keygen -l prints it (got ${JSON.stringify(c.hostKey)})` });
      }
    }
    if (!isUnknown(news.create) && (typeof news.create !== "string" || news.create === "")) {
      failures.push({ property: "create", reason: "create must be a non-empty command" });
    }
    return { inputs: news, failures };
  },
  async diff(_id: string, olds: any, news: any) {
    if (isUnknown(news.triggers) || changed(olds.triggers, news.triggers)) {
      return { changes: true, replaces: ["triggers"], deleteBeforeReplace: false };
    }
    const keys = RERUN_KEYS.filter((k) => isUnknown(news[k]) || changed(olds[k], news[k]));
    // A connection change (address, user, key) alone re-runs nothing: the node is the same one.
    const conn = ["host", "port", "user", "privateKey", "dialTimeout"].some((k) =>
      isUnknown(news.connection) || isUnknown(news.connection?.[k]) || changed(olds.connection?.[k], news.connection?.[k]));
    return { changes: keys.length > 0 || conn || changed(olds.logUrn, news.logUrn) || changed(olds.delete, news.delete) || changed(olds.around, news.around) };
  },
  async create(inputs: any) {
    const p = inputs as RemoteCommandProps;
    const run = await runOn(p, p.create, "create");
    return { id: `${p.connection.node}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`, outs: outputs(p, run) };
  },
  async update(_id: string, olds: any, news: any) {
    const p = news as RemoteCommandProps;
    const rerun = RERUN_KEYS.some((k) => changed(olds[k], news[k]));
    // Keep the key recorded at first contact: a node that now shows another key is refused.
    const pinned = { ...p, connection: { ...p.connection, hostKey: p.connection.hostKey || olds.connection?.hostKey || "" } };
    if (!rerun) return { outs: { ...olds, ...pinned, hostKey: olds.hostKey, stdout: olds.stdout } };
    const main = () => runOn(pinned, p.update || p.create, "update");
    const run = p.around ? await rolled(pinned, p.around, main) : await main();
    return { outs: outputs(pinned, run) };
  },
  async delete(_id: string, olds: any) {
    const p = olds as RemoteCommandProps;
    if (!p.delete) return;
    await runOn({ ...p, archiveDir: "", stdin: "" }, p.delete, "delete");
  },
};

export interface RemoteConnectionArgs {
  host: pulumi.Input<string>;
  port?: pulumi.Input<number>;
  user: pulumi.Input<string>;
  /** PEM/OpenSSH text; always handled as a secret. */
  privateKey: pulumi.Input<string>;
  /** `SHA256:…`; when given, any other key is refused before anything is sent. */
  hostKey?: pulumi.Input<string>;
  /** Seconds to keep dialing a node that does not answer yet (default 300). */
  dialTimeout?: pulumi.Input<number>;
  /** The node's name, for messages. */
  node: string;
}

export interface RemoteCommandArgs {
  connection: RemoteConnectionArgs;
  create: pulumi.Input<string>;
  update?: pulumi.Input<string>;
  delete?: pulumi.Input<string>;
  /** Secret text on the command's stdin (a token, a manifest). */
  stdin?: pulumi.Input<string>;
  /** A project directory streamed as a tar archive on stdin, and the digest that re-runs the step when it changes. */
  archive?: { dir: string; digest: string };
  timeoutSeconds: pulumi.Input<number>;
  logging?: Logging;
  captureStdout?: boolean;
  /** Values whose change replaces the step (a new one is created, then the old one's `delete` runs). */
  triggers?: pulumi.Input<unknown>[];
  /** Values whose change re-runs the step in place (`update`, or `create` again). */
  rerunOn?: pulumi.Input<unknown>[];
  /** A re-run rolled through a group: commands before and after it on another node, a few nodes at a time. */
  around?: {
    connection: RemoteConnectionArgs;
    before: pulumi.Input<string>;
    after: pulumi.Input<string>;
    group: string;
    limit: number;
    timeoutSeconds: number;
  };
}

export const REMOTE_COMMAND_SECRET_OUTPUTS = ["connection", "stdin", "stdout", "around"];
export const REMOTE_COMMAND_TYPE = "pulumi-nodejs:dynamic/k3s:RemoteCommand";

function connectionInput(c: RemoteConnectionArgs): pulumi.Output<ssh.Connection> {
  return pulumi.output({
    host: c.host, port: c.port ?? 22, user: c.user, privateKey: c.privateKey, hostKey: c.hostKey ?? "",
    dialTimeout: c.dialTimeout ?? 300, node: c.node,
  }) as pulumi.Output<ssh.Connection>;
}

/**
 * The parent's URN as a plain value. Depending on a component's `urn` output would make this resource wait
 * for every child of that component — itself included.
 */
function urnWithoutDependency(parent: pulumi.Resource): Promise<string> {
  return new Promise<string>((resolve) => parent.urn.apply((urn) => resolve(urn)));
}

export class RemoteCommand extends pulumi.dynamic.Resource {
  /** Secret; empty unless `captureStdout`. */
  declare readonly stdout: pulumi.Output<string>;
  /** `SHA256:…` fingerprint of the host key the node presented. */
  declare readonly hostKey: pulumi.Output<string>;

  constructor(name: string, args: RemoteCommandArgs, opts: pulumi.CustomResourceOptions = {}) {
    const c = args.connection;
    super(remoteCommandProvider, name, {
      logUrn: pulumi.createUrn(name, REMOTE_COMMAND_TYPE, opts.parent && urnWithoutDependency(opts.parent)),
      connection: pulumi.secret(connectionInput(c)),
      create: args.create,
      update: args.update ?? "",
      delete: args.delete ?? "",
      stdin: args.stdin === undefined ? "" : pulumi.secret(args.stdin),
      archiveDir: args.archive?.dir ?? "",
      archiveDigest: args.archive?.digest ?? "",
      timeoutSeconds: pulumi.output(args.timeoutSeconds).apply((t) => t + 30),
      logging: args.logging ?? "stdoutAndStderr",
      captureStdout: args.captureStdout ?? false,
      triggers: args.triggers ?? [],
      rerunOn: args.rerunOn ?? [],
      around: args.around ? {
        connection: pulumi.secret(connectionInput(args.around.connection)),
        before: args.around.before, after: args.around.after, group: args.around.group, limit: args.around.limit,
        timeoutSeconds: args.around.timeoutSeconds,
      } : null,
      stdout: undefined,
      hostKey: undefined,
    }, pulumi.mergeOptions(opts, { additionalSecretOutputs: REMOTE_COMMAND_SECRET_OUTPUTS }), "k3s", "RemoteCommand");
  }
}
