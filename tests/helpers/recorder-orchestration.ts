// Records what the program sends to the engine for each resource: type, name, direct dependencies (explicit
// dependsOn and those carried by inputs), additionalSecretOutputs and the raw serialized inputs — secrets
// still wrapped, so a test can tell a secret input from a plaintext one. Under mocks neither dependsOn nor
// additionalSecretOutputs reach the mock, hence the wrap of the monitor (internal API, kept in this one file).
import * as pulumi from "@pulumi/pulumi";

// The SDK's own wire markers for a secret, rather than copies of its constants.
import { specialSigKey as SECRET_SIG_KEY, specialSecretSig as SECRET_SIG } from "@pulumi/pulumi/runtime/rpc";

export interface Registration {
  type: string;
  name: string;
  urn: string;
  dependencies: string[];
  additionalSecretOutputs: string[];
  /** Inputs as serialized for the engine; a secret is `{ [SECRET_SIG_KEY]: SECRET_SIG, value }`. */
  rawInputs: Record<string, unknown>;
}

export class Recorder {
  readonly registrations: Registration[] = [];

  /** Call after `setMocks` and before the program registers anything. */
  install(): void {
    const monitor: any = pulumi.runtime.getMonitor();
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) => {
      const type = req.getType(), name = req.getName();
      const entry: Registration = {
        type, name, urn: "",
        dependencies: req.getDependenciesList(),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        rawInputs: req.getObject()?.toJavaScript() ?? {},
      };
      this.registrations.push(entry);
      return original(req, (err: any, resp: any) => {
        if (resp) entry.urn = resp.getUrn();
        callback(err, resp);
      });
    };
  }

  find(name: string): Registration {
    const r = this.registrations.find((x) => x.name === name);
    if (!r) throw new Error(`no resource named ${name} was registered (have: ${this.registrations.map((x) => x.name).join(", ")})`);
    return r;
  }

  ofType(type: string): Registration[] {
    return this.registrations.filter((r) => r.type === type);
  }

  /** Paths of every input value that contains `needle` outside a secret. */
  plaintextOccurrences(needle: string): string[] {
    const hits: string[] = [];
    const walk = (v: unknown, where: string): void => {
      if (typeof v === "string") {
        if (v.includes(needle)) hits.push(where);
      } else if (Array.isArray(v)) {
        v.forEach((x, i) => walk(x, `${where}[${i}]`));
      } else if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (o[SECRET_SIG_KEY] === SECRET_SIG) return; // a secret: encrypted in state
        for (const [k, x] of Object.entries(o)) walk(x, `${where}.${k}`);
      }
    };
    for (const r of this.registrations) walk(r.rawInputs, `${r.type}::${r.name}`);
    return hits;
  }

  /** True when `needle` appears inside a secret somewhere (proves the scan looks where the token goes). */
  secretOccurrences(needle: string): string[] {
    const hits: string[] = [];
    const walk = (v: unknown, where: string, inSecret: boolean): void => {
      if (typeof v === "string") {
        if (inSecret && v.includes(needle)) hits.push(where);
      } else if (Array.isArray(v)) {
        v.forEach((x, i) => walk(x, `${where}[${i}]`, inSecret));
      } else if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        const secret = inSecret || o[SECRET_SIG_KEY] === SECRET_SIG;
        for (const [k, x] of Object.entries(o)) walk(x, `${where}.${k}`, secret);
      }
    };
    for (const r of this.registrations) walk(r.rawInputs, `${r.type}::${r.name}`, false);
    return hits;
  }
}

/** True for a serialized input the engine stores encrypted. */
export function isSecretInput(v: unknown): boolean {
  return !!v && typeof v === "object" && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
}

/** A serialized input as the provider receives it: every secret wrapper removed, at any depth. */
export function plain(v: unknown): any {
  if (isSecretInput(v)) return plain((v as { value: unknown }).value);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Resolves once every registration so far has its URN back from the mock monitor. */
export async function settle(recorder: Recorder): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 20));
    if (recorder.registrations.every((r) => r.urn)) {
      const n = recorder.registrations.length;
      await new Promise((r) => setTimeout(r, 100));
      if (recorder.registrations.length === n && recorder.registrations.every((r) => r.urn)) return;
    }
  }
  throw new Error("registrations did not settle within 4 s");
}
