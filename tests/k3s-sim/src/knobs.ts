import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { hostPath } from "./paths";

declare global {
  // eslint-disable-next-line no-var
  var K3S_SIM_RELEASE: string | undefined;
}

// The release mirror (mirror.ts) serves one build per release name with a line setting this global after the
// shebang; a stamped binary reports that release whatever the knobs say, as a real k3s binary carries its own.
export const STAMPED_RELEASE: string | undefined = globalThis.K3S_SIM_RELEASE;

/** The short commit `k3s --version` prints in parentheses; stable per release. */
export function releaseCommit(version: string, length = 8): string {
  return crypto.createHash("sha256").update(version).digest("hex").slice(0, length);
}

export interface Faults {
  exitAtStart?: number;
  apiNeverReady?: boolean;
  nodeNeverReady?: boolean;
  noToken?: boolean;
  caMismatch?: boolean;
  wrongPassword?: boolean;
  malformedToken?: string;
  undrainablePod?: boolean | string;
}

// Seconds. Defaults are realistic k3s timings.
export interface Knobs {
  tokenDelay: number;
  apiReadyDelay: number;
  nodeReadyDelay: number;
  etcdJoinDelay: number;
  agentJoinDelay: number;
  retryInterval: number;
  version: string;
  faults: Faults;
}

export const DEFAULT_KNOBS: Knobs = {
  tokenDelay: 2,
  apiReadyDelay: 15,
  nodeReadyDelay: 3,
  etcdJoinDelay: 3,
  agentJoinDelay: 1,
  retryInterval: 5,
  version: "v1.34.3+k3s1",
  faults: {},
};

export const KNOBS_FILE = "/etc/k3s-sim.json";

export function loadKnobs(): Knobs {
  const file = hostPath(KNOBS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return { ...DEFAULT_KNOBS, version: STAMPED_RELEASE ?? DEFAULT_KNOBS.version, faults: {} };
  }
  let raw: Partial<Knobs>;
  try {
    raw = JSON.parse(text) as Partial<Knobs>;
  } catch (e) {
    throw new Error(`${KNOBS_FILE}: invalid JSON: ${(e as Error).message}`);
  }
  const knobs: Knobs = { ...DEFAULT_KNOBS, ...raw, faults: { ...(raw.faults ?? {}) } };
  if (STAMPED_RELEASE) knobs.version = STAMPED_RELEASE;
  for (const k of ["tokenDelay", "apiReadyDelay", "nodeReadyDelay", "etcdJoinDelay", "agentJoinDelay", "retryInterval"] as const) {
    if (typeof knobs[k] !== "number" || !(knobs[k] >= 0)) {
      throw new Error(`${KNOBS_FILE}: ${k}=${JSON.stringify(knobs[k])}: must be a number of seconds >= 0`);
    }
  }
  const u = knobs.faults.undrainablePod;
  if (u !== undefined && typeof u !== "boolean" && !/^([a-z0-9-]+\/)?[a-z0-9-]+$/.test(String(u))) {
    throw new Error(`${KNOBS_FILE}: faults.undrainablePod=${JSON.stringify(u)}: must be true or "namespace/app"`);
  }
  return knobs;
}

/** The workload the undrainablePod fault places on this node, as "namespace/app". */
export function guardedPod(knobs: Knobs): string | undefined {
  const u = knobs.faults.undrainablePod;
  if (u === undefined || u === false) return undefined;
  return u === true ? "default/guarded" : String(u).includes("/") ? String(u) : `default/${String(u)}`;
}

export const ms = (seconds: number): number => Math.round(seconds * 1000);
export const sleep = (seconds: number): Promise<void> => new Promise((r) => setTimeout(r, ms(seconds)));
