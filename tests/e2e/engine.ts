// A stand-in for the Pulumi engine that carries resources out for real.
//
// The program runs under pulumi.runtime.setMocks; the mock monitor awaits `newResource` before it
// answers a registration, and the SDK registers a resource only once its inputs and its dependsOn
// resources have resolved. So doing the real work inside `newResource` executes the graph the program
// registered in dependency order with all the parallelism those dependencies allow, as `pulumi up`
// would. What runs is what the program registered: the instance's role and name, the commands' own
// text, stdin and connection, the copy's source, the dynamic provider's serialized text.
import * as pulumi from "@pulumi/pulumi";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { copyToRemote, runCommand, newId, type CommandInputs, type Connection } from "./command-provider";

import { specialSigKey as SIG_KEY, specialSecretSig as SECRET_SIG } from "@pulumi/pulumi/runtime/rpc";

export interface ResourceEvent {
  type: string;
  name: string;
  startMs: number;
  endMs: number;
  ok: boolean;
  error?: string;
}

export interface InstanceRequest {
  name: string;
  inputs: Record<string, unknown>;
}

export interface EngineOptions {
  projectDir: string;
  /** Boots the test node that stands in for an EC2 instance; resolves with its address. */
  startInstance(request: InstanceRequest): Promise<{ ip: string; id: string }>;
  /** Canned answers for provider functions (getAmi, getAvailabilityZones, …). */
  invoke(token: string, args: Record<string, unknown>): Record<string, unknown>;
  log(resource: string, line: string): void;
}

function isSecret(value: unknown): value is { value: unknown } {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** The decrypted view a provider receives. */
export function unwrapSecrets(value: unknown): unknown {
  if (isSecret(value)) return unwrapSecrets(value.value);
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value instanceof pulumi.asset.Asset || value instanceof pulumi.asset.Archive) return value;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

export function wrapSecret(value: unknown): unknown {
  return { [SIG_KEY]: SECRET_SIG, value };
}

/** Paths at which `needle` appears in `value` outside any secret: what state would hold in clear text. */
export function plaintextPaths(value: unknown, needle: string, at = ""): string[] {
  if (isSecret(value)) return [];
  if (typeof value === "string") return value.includes(needle) ? [at || "(root)"] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => plaintextPaths(v, needle, `${at}[${i}]`));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => plaintextPaths(v, needle, at ? `${at}.${k}` : k));
  }
  return [];
}

export interface RegisteredResource {
  type: string;
  name: string;
  /** Inputs as registered, secrets still wrapped. */
  inputs: Record<string, unknown>;
  /** State as the engine would store it, secrets wrapped. */
  state: Record<string, unknown>;
  additionalSecretOutputs: string[];
  dependencies: string[];
}

export class RehearsalEngine implements pulumi.runtime.Mocks {
  readonly events: ResourceEvent[] = [];
  readonly resources: RegisteredResource[] = [];
  private readonly secretOutputs = new Map<string, string[]>();
  private readonly dependencies = new Map<string, string[]>();
  private readonly t0 = Date.now();

  constructor(private readonly options: EngineOptions) {}

  /**
   * Reads what the mock monitor does not pass to newResource: each registration's
   * additionalSecretOutputs (applied by the real engine) and its dependencies. Call after setMocks.
   */
  watchRegistrations(): void {
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      registerResource(req: RegisterRequest, cb: unknown): void;
    };
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
      this.secretOutputs.set(req.getName(), req.getAdditionalsecretoutputsList());
      this.dependencies.set(req.getName(), req.getDependenciesList());
      return original(req, cb);
    };
  }

  elapsedMs(): number {
    return Date.now() - this.t0;
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    return this.options.invoke(args.token, args.inputs as Record<string, unknown>);
  }

  async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
    const event: ResourceEvent = { type: args.type, name: args.name, startMs: this.elapsedMs(), endMs: 0, ok: false };
    this.events.push(event);
    const raw = args.inputs as Record<string, unknown>;
    try {
      const { id, outputs } = await this.carryOut(args.type, args.name, raw);
      const secretKeys = new Set(this.secretOutputs.get(args.name) ?? []);
      const state: Record<string, unknown> = { ...raw };
      for (const [key, value] of Object.entries(outputs)) {
        // The engine keeps an output secret when its input was secret or the program asked for it.
        state[key] = secretKeys.has(key) || isSecret(raw[key]) ? wrapSecret(value) : value;
      }
      this.resources.push({
        type: args.type,
        name: args.name,
        inputs: raw,
        state,
        additionalSecretOutputs: [...secretKeys],
        dependencies: this.dependencies.get(args.name) ?? [],
      });
      event.ok = true;
      return { id, state };
    } catch (err) {
      event.error = (err as Error).message;
      this.options.log(args.name, `error: ${event.error}`);
      throw err;
    } finally {
      event.endMs = this.elapsedMs();
    }
  }

  private async carryOut(
    type: string,
    name: string,
    raw: Record<string, unknown>,
  ): Promise<{ id: string; outputs: Record<string, unknown> }> {
    const inputs = unwrapSecrets(raw) as Record<string, unknown>;
    switch (type) {
      case "aws:ec2/instance:Instance": {
        const { ip, id } = await this.options.startInstance({ name, inputs });
        return { id, outputs: { privateIp: ip, publicIp: ip, privateDns: `${id}.internal`, arn: `arn:aws:ec2:::instance/${id}` } };
      }
      case "command:remote:Command": {
        const result = await runCommand(name, inputs as unknown as CommandInputs, this.options.log);
        return { id: newId(name), outputs: { stdout: result.stdout, stderr: result.stderr } };
      }
      case "command:remote:CopyToRemote": {
        await copyToRemote(
          name,
          inputs as unknown as Parameters<typeof copyToRemote>[1],
          this.options.log,
        );
        return { id: newId(name), outputs: {} };
      }
      default:
        // Dynamic resources carry their own type token (pulumi-nodejs:dynamic/<module>:<name>).
        if (type.startsWith("pulumi-nodejs:dynamic")) return this.createDynamic(name, inputs);
        // Cloud objects with nothing to carry out here (VPC, subnets, security groups, key pairs, …).
        return { id: `${name}-id`, outputs: { arn: `arn:mock:${type}:${name}` } };
    }
  }

  /** Runs the dynamic provider from its serialized text in a fresh process, as the engine's host does. */
  private createDynamic(name: string, inputs: Record<string, unknown>): Promise<{ id: string; outputs: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(__dirname, "dynamic-host.cjs")], {
        cwd: this.options.projectDir,
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
      child.stderr.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString("utf8").split("\n")) if (line) this.options.log(name, line);
      });
      child.on("close", () => {
        const last = stdout.trim().split("\n").pop() ?? "";
        let answer: { id?: string; outs?: Record<string, unknown>; error?: string };
        try {
          answer = JSON.parse(last);
        } catch {
          return reject(new Error(`${name}: the dynamic provider host printed no result`));
        }
        if (answer.error !== undefined) return reject(new Error(answer.error));
        resolve({ id: answer.id ?? newId(name), outputs: answer.outs ?? {} });
      });
      child.stdin.end(JSON.stringify({ inputs }));
    });
  }
}

interface RegisterRequest {
  getName(): string;
  getAdditionalsecretoutputsList(): string[];
  getDependenciesList(): string[];
}
