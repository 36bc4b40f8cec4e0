import * as fs from "node:fs";
import { hostPath } from "./paths";

export interface Faults {
  exitAtStart?: number;
  apiNeverReady?: boolean;
  nodeNeverReady?: boolean;
  noToken?: boolean;
  caMismatch?: boolean;
  wrongPassword?: boolean;
  malformedToken?: string;
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
    return { ...DEFAULT_KNOBS, faults: {} };
  }
  let raw: Partial<Knobs>;
  try {
    raw = JSON.parse(text) as Partial<Knobs>;
  } catch (e) {
    throw new Error(`${KNOBS_FILE}: invalid JSON: ${(e as Error).message}`);
  }
  const knobs: Knobs = { ...DEFAULT_KNOBS, ...raw, faults: { ...(raw.faults ?? {}) } };
  for (const k of ["tokenDelay", "apiReadyDelay", "nodeReadyDelay", "etcdJoinDelay", "agentJoinDelay", "retryInterval"] as const) {
    if (typeof knobs[k] !== "number" || !(knobs[k] >= 0)) {
      throw new Error(`${KNOBS_FILE}: ${k}=${JSON.stringify(knobs[k])}: must be a number of seconds >= 0`);
    }
  }
  return knobs;
}

export const ms = (seconds: number): number => Math.round(seconds * 1000);
export const sleep = (seconds: number): Promise<void> => new Promise((r) => setTimeout(r, ms(seconds)));
