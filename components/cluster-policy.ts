// Changes a running cluster cannot take safely, refused when `pulumi preview` or `pulumi up` plans them —
// before anything changes. Only the previous deployment knows the old values, so the rules live in the
// `check` of a small dynamic resource, which the engine hands the old inputs and the new ones:
// - k3sVersion: no downgrade, and at most one minor version up per update (Kubernetes' version skew policy);
// - servers: no more than a minority of etcd members may leave in one update (removals also run one at a
//   time and only while the rest keep a majority; an even count is refused by the config rules already);
// - the first server listed must already be a member: the others join through it, and a first server that
//   is new would start a second, empty cluster instead of joining the running one.
import * as pulumi from "@pulumi/pulumi";

export interface ClusterPolicyArgs {
  k3sVersion: pulumi.Input<string>;
  /** `hosts` only: where each named machine is reached (`address:port`). */
  machines?: Record<string, string>;
  /** The setting that declares the servers (`k3s-cluster:servers` on EC2, `k3s-cluster:hosts` otherwise). */
  serversKey: string;
  servers: pulumi.Input<string[]>;
}

function parseRelease(v: string): [number, number, number, number, number] | undefined {
  const m = /^v(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?\+k3s(\d+)$/.exec(v);
  // A release candidate sorts before its release: rc N → N, release → a number above any rc.
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1e9 : Number(m[4]), Number(m[5])] : undefined;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Why changing `from` to `to` is refused, or undefined. Exported for the unit tests. */
export function versionChangeProblem(from: string | undefined, to: string): string | undefined {
  const a = from ? parseRelease(from) : undefined;
  const b = parseRelease(to);
  if (!a || !b || from === to) return undefined;
  if (compare(b, a) < 0) {
    return `k3s-cluster:k3sVersion ${to} is older than the running ${from}: a downgrade is refused (k3s does not support it; restore from an etcd snapshot instead)`;
  }
  if (b[0] !== a[0] || b[1] > a[1] + 1) {
    return `k3s-cluster:k3sVersion ${from} → ${to} skips a minor version: Kubernetes supports upgrades one minor version at a time (go to v${a[0]}.${a[1] + 1}.x first)`;
  }
  return undefined;
}

/**
 * Why a named host that now points at another machine is refused, or undefined: k3s cannot have two nodes of
 * one name, so a machine is replaced by adding it under a new name and removing the old entry in the same
 * update — the new node joins (and, a server, passes the seven steps) before the old one leaves.
 */
export function movedHostProblem(from: Record<string, string> | undefined, to: Record<string, string> | undefined): string | undefined {
  if (!from || !to) return undefined;
  const moved = Object.keys(to).filter((name) => from[name] !== undefined && from[name] !== to[name]);
  if (moved.length === 0) return undefined;
  return `k3s-cluster:hosts ${moved.map((n) => `${n} moved from ${from[n]} to ${to[n]}`).join(", ")}: a node keeps its machine; ` +
    "to replace a machine, add the new one under a new name and remove the old entry in the same update (the new node joins before the old one leaves)";
}

/** Why going from `from` to `to` servers in one update is refused, or undefined. */
export function serverRemovalProblem(key: string, from: number | undefined, to: number): string | undefined {
  if (!from || to >= from) return undefined;
  const leaving = from - to;
  const canLeave = Math.floor((from - 1) / 2);
  if (leaving <= canLeave) return undefined;
  return `k3s-cluster:${key} ${from} → ${to} servers would remove ${leaving} of ${from} etcd members in one update; ` +
    `at most ${canLeave} can leave at once and keep a majority (remove them over several updates)`;
}

/**
 * Why `to` would lead the cluster with a server that is not yet a member, or undefined. The first server
 * listed starts with cluster-init and the others join through it, so a running cluster must keep one of
 * its servers first (a replaced first server is removed while the next one listed leads).
 */
export function firstServerProblem(key: string, from: string[] | undefined, to: string[]): string | undefined {
  if (!from || from.length === 0 || to.length === 0 || from.includes(to[0])) return undefined;
  const kept = to.filter((n) => from.includes(n));
  const fix = key !== "hosts"
    ? "retire fewer servers at once (a single server is replaced by going to 3 servers first)"
    : kept.length > 0
      ? `list a running server first (${kept.join(", ")})`
      : "keep at least one running server and list it first; replace the others over several updates";
  return `k3s-cluster:${key} lists ${to[0]} first, but it is not a server of the running cluster (${from.join(", ")}); ` +
    `the first server is the one the others join through and a new one would start an empty cluster: ${fix}`;
}

const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export const clusterPolicyProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: any, news: any) {
    const failures: { property: string; reason: string }[] = [];
    if (typeof news.k3sVersion === "string" && news.k3sVersion !== UNKNOWN) {
      const v = versionChangeProblem(olds?.k3sVersion, news.k3sVersion);
      if (v) failures.push({ property: "k3sVersion", reason: v });
    }
    const m = movedHostProblem(olds?.machines, news.machines);
    if (m) failures.push({ property: "machines", reason: m });
    if (Array.isArray(news.servers) && Array.isArray(olds?.servers)) {
      const s = serverRemovalProblem(news.serversKey, olds.servers.length, news.servers.length);
      if (s) failures.push({ property: "servers", reason: s });
      const f = firstServerProblem(news.serversKey, olds.servers, news.servers);
      if (f) failures.push({ property: "servers", reason: f });
    }
    return { inputs: news, failures };
  },
  async create(inputs: any) {
    return { id: "policy", outs: inputs };
  },
  async update(_id: string, _olds: any, news: any) {
    return { outs: news };
  },
};

/** Holds the last deployed version and server list, so the next update can be checked against them. */
export class ClusterPolicy extends pulumi.dynamic.Resource {
  constructor(name: string, args: ClusterPolicyArgs, opts?: pulumi.CustomResourceOptions) {
    super(clusterPolicyProvider, name, { ...args }, opts, "k3s", "ClusterPolicy");
  }
}
