import { hostPath } from "./paths";
import { KUBECONFIG, KubeAccess, readKubeconfig } from "./kubeconfig";
import { request } from "./http-client";
import { jsonpath } from "./jsonpath";
import { formatGoDuration, parseGoDuration } from "./duration";

const TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
// kubectl drain's EvictErrorRetryDelay.
const EVICT_RETRY_MS = 5000;

interface Table { columnDefinitions: { name: string; priority: number }[]; rows: { cells: string[]; object?: { metadata?: { namespace?: string } } }[]; }

// kubectl's tabwriter (minwidth 6, padding 3): columns padded to the widest cell plus three spaces.
function printTable(t: Table, wide: boolean, withNamespace: boolean): string {
  const cols = t.columnDefinitions.map((c, i) => ({ ...c, i })).filter((c) => wide || c.priority === 0);
  if (t.rows.length === 0) return "";
  const header = cols.map((c) => c.name.toUpperCase());
  const body = t.rows.map((r) => cols.map((c) => String(r.cells[c.i])));
  const rows = withNamespace
    ? [["NAMESPACE", ...header], ...body.map((cells, k) => [t.rows[k].object?.metadata?.namespace ?? "", ...cells])]
    : [header, ...body];
  const widths = rows[0].map((_c, j) => Math.max(6, ...rows.map((r) => r[j].length + 3)));
  return rows.map((r) => r.map((cell, j) => (j === r.length - 1 ? cell : cell.padEnd(widths[j]))).join("")).join("\n") + "\n";
}

const out = (s: string) => { process.stdout.write(s); };
const err = (s: string) => { process.stderr.write(s); };

function fail(msg: string): number {
  err(`${msg}\n`);
  return 1;
}

class ApiError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) { super(message); }
  /** As kubectl's StandardErrorMessage renders an API status. */
  render(): string { return this.reason ? `Error from server (${this.reason}): ${this.message}` : `Error from server: ${this.message}`; }
}

interface Flags {
  output?: string; kubeconfig: string; raw?: string; namespace?: string; allNamespaces: boolean; fieldSelector?: string;
  timeout?: string; ignoreDaemonsets: boolean; deleteEmptydirData: boolean; force: boolean; ignoreNotFound: boolean;
  disableEviction: boolean;
}

const VALUE_FLAGS: Record<string, keyof Flags | "ignored"> = {
  o: "output", output: "output", kubeconfig: "kubeconfig", raw: "raw", n: "namespace", namespace: "namespace",
  "field-selector": "fieldSelector", timeout: "timeout", "grace-period": "ignored", "pod-selector": "ignored",
  "chunk-size": "ignored", l: "ignored", selector: "ignored", "request-timeout": "ignored",
};
const BOOL_FLAGS: Record<string, keyof Flags | "ignored"> = {
  A: "allNamespaces", "all-namespaces": "allNamespaces", "ignore-daemonsets": "ignoreDaemonsets",
  "delete-emptydir-data": "deleteEmptydirData", "delete-local-data": "deleteEmptydirData", force: "force",
  "ignore-not-found": "ignoreNotFound", "disable-eviction": "disableEviction", wait: "ignored",
};

function parseArgs(argv: string[]): { flags: Flags; words: string[] } {
  const flags: Flags = {
    kubeconfig: process.env.KUBECONFIG || hostPath(KUBECONFIG), allNamespaces: false, ignoreDaemonsets: false,
    deleteEmptydirData: false, force: false, ignoreNotFound: false, disableEviction: false,
  };
  const words: string[] = [];
  const set = (key: keyof Flags | "ignored", v: string | boolean) => { if (key !== "ignored") (flags as unknown as Record<string, unknown>)[key] = v; };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--?([A-Za-z][\w-]*)(?:=(.*))?$/.exec(a);
    if (!m) { words.push(a); continue; }
    const [, name, inline] = m;
    if (name in BOOL_FLAGS) { set(BOOL_FLAGS[name], inline === undefined ? true : inline === "true"); continue; }
    if (name in VALUE_FLAGS) { set(VALUE_FLAGS[name], inline ?? argv[++i] ?? ""); continue; }
    // -owide, -nkube-system
    if (!a.startsWith("--") && a.length > 2 && (a[1] === "o" || a[1] === "n")) { set(VALUE_FLAGS[a[1]], a.slice(2).replace(/^=/, "")); continue; }
    throw new Error(`error: unknown flag: ${a.startsWith("--") ? `--${name}` : `-${name}`}`);
  }
  return { flags, words };
}

class Client {
  constructor(private readonly access: KubeAccess) {}

  async call(method: string, path: string, opts: { accept?: string; body?: unknown; contentType?: string } = {}): Promise<unknown> {
    const hostPort = new URL(this.access.server).host;
    let r;
    try {
      r = await request(`${this.access.server}${path}`, {
        method, ca: this.access.ca, cert: this.access.cert, key: this.access.key,
        headers: { accept: opts.accept ?? "application/json", ...(opts.contentType ? { "content-type": opts.contentType } : {}) },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ECONNREFUSED") throw new Error(`The connection to the server ${hostPort} was refused - did you specify the right host or port?`);
      throw new Error(`Unable to connect to the server: ${(e as Error).message}`);
    }
    if (r.status >= 200 && r.status < 300) return r.body.length ? JSON.parse(r.body.toString()) : {};
    let status: { reason?: string; message?: string };
    try { status = JSON.parse(r.body.toString()) as { reason?: string; message?: string }; } catch { status = { message: r.body.toString().trim() }; }
    throw new ApiError(r.status, status.reason ?? "", status.message ?? `HTTP ${r.status}`);
  }
}

// Patches the way kubectl's CordonHelper does (strategic merge patch of spec.unschedulable).
async function cordonNode(c: Client, name: string, desired: boolean): Promise<number> {
  const node = await c.call("GET", `/api/v1/nodes/${encodeURIComponent(name)}`) as { spec?: { unschedulable?: boolean } };
  const verb = desired ? "cordon" : "uncordon";
  if ((node.spec?.unschedulable === true) === desired) {
    out(`node/${name} already ${verb}ed\n`);
    return 0;
  }
  try {
    await c.call("PATCH", `/api/v1/nodes/${encodeURIComponent(name)}`, {
      body: { spec: { unschedulable: desired ? true : null } }, contentType: "application/strategic-merge-patch+json",
    });
  } catch (e) {
    err(`error: unable to ${verb} node "${name}": ${(e as Error).message}\n`);
    return 0;
  }
  out(`node/${name} ${verb}ed\n`);
  return 0;
}

interface Pod {
  metadata: { name: string; namespace: string; uid: string; ownerReferences?: { kind: string; name: string; controller?: boolean; apiVersion: string }[] };
  spec: { volumes?: { emptyDir?: object }[] };
  status: { phase?: string };
}

interface PodVerdict { pod: Pod; remove: boolean; kind: "ok" | "warning" | "error" | "skip"; message: string; }

const DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods";
const LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)";
const LOCAL_STORAGE_WARNING = "deleting Pods with local storage";
const UNMANAGED_FATAL = "Pods that declare no controller (use --force to override)";
const UNMANAGED_WARNING = "deleting Pods that declare no controller";
const FILTER_ORDER = [DAEMONSET_FATAL, LOCAL_STORAGE_FATAL, UNMANAGED_FATAL];

// kubectl's drain filters, in its order; a pod's verdict is the last filter that ran (a filter that keeps the
// pod stops the chain), which is why the local-storage warning never shows for a replicated pod.
async function judge(c: Client, f: Flags, pod: Pod): Promise<PodVerdict> {
  const ok: PodVerdict = { pod, remove: true, kind: "ok", message: "" };
  const finished = pod.status.phase === "Succeeded" || pod.status.phase === "Failed";
  const ctrl = pod.metadata.ownerReferences?.find((o) => o.controller);
  let v = ok;
  if (ctrl && ctrl.kind === "DaemonSet" && ctrl.apiVersion === "apps/v1" && !finished) {
    try {
      await c.call("GET", `/apis/apps/v1/namespaces/${pod.metadata.namespace}/daemonsets/${ctrl.name}`);
      v = f.ignoreDaemonsets ? { pod, remove: false, kind: "warning", message: DAEMONSET_WARNING } : { pod, remove: false, kind: "error", message: DAEMONSET_FATAL };
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && f.force) v = { pod, remove: true, kind: "warning", message: e.message };
      else v = { pod, remove: false, kind: "error", message: (e as Error).message };
    }
    if (!v.remove) return v;
  }
  const emptyDir = (pod.spec.volumes ?? []).some((x) => x.emptyDir !== undefined);
  if (emptyDir && !finished) {
    v = f.deleteEmptydirData ? { pod, remove: true, kind: "warning", message: LOCAL_STORAGE_WARNING } : { pod, remove: false, kind: "error", message: LOCAL_STORAGE_FATAL };
    if (!v.remove) return v;
  }
  if (finished || ctrl) return ok;
  return f.force ? { pod, remove: true, kind: "warning", message: UNMANAGED_WARNING } : { pod, remove: false, kind: "error", message: UNMANAGED_FATAL };
}

function grouped(verdicts: PodVerdict[], kind: "warning" | "error"): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const v of verdicts.filter((x) => x.kind === kind)) m.set(v.message, [...(m.get(v.message) ?? []), `${v.pod.metadata.namespace}/${v.pod.metadata.name}`]);
  return m;
}

async function podsForDeletion(c: Client, f: Flags, node: string): Promise<{ verdicts: PodVerdict[]; errors: string[] }> {
  const list = await c.call("GET", `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`) as { items: Pod[] };
  const verdicts = await Promise.all(list.items.map((p) => judge(c, f, p)));
  // kubectl's order is a Go map's, i.e. any; the filters' order is as good as any and stable.
  const rank = (msg: string) => { const i = FILTER_ORDER.indexOf(msg); return i < 0 ? FILTER_ORDER.length : i; };
  const errors = [...grouped(verdicts, "error")].sort(([a], [b]) => rank(a) - rank(b))
    .map(([msg, pods]) => `cannot delete ${msg}: ${pods.join(", ")}`);
  return { verdicts, errors };
}

/** utilerrors.Aggregate's Error(): one message alone, several in brackets. */
const aggregate = (errs: string[]) => (errs.length === 1 ? errs[0] : `[${errs.join(", ")}]`);
const sleepMs = (n: number) => new Promise((r) => setTimeout(r, n));

async function evictOne(c: Client, pod: Pod, deadline: number, timeoutText: string, disableEviction: boolean): Promise<string | undefined> {
  const { name, namespace, uid } = pod.metadata;
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
  for (;;) {
    out(`evicting pod ${namespace}/${name}\n`);
    if (Date.now() >= deadline) return `error when evicting pods/"${name}" -n "${namespace}": global timeout reached: ${timeoutText}`;
    try {
      if (disableEviction) await c.call("DELETE", path);
      else await c.call("POST", `${path}/eviction`, { body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace } } });
      break;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return undefined;
      if (e instanceof ApiError && e.status === 429) {
        err(`error when evicting pods/"${name}" -n "${namespace}" (will retry after ${formatGoDuration(EVICT_RETRY_MS)}): ${e.message}\n`);
        await sleepMs(EVICT_RETRY_MS);
        continue;
      }
      return `error when evicting pods/"${name}" -n "${namespace}": ${(e as Error).message}`;
    }
  }
  // waitForDelete: poll every second until the pod is gone or replaced by one with another uid.
  for (;;) {
    try {
      const p = await c.call("GET", path) as Pod;
      if (p.metadata.uid !== uid) break;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) break;
      return `error when waiting for pod "${name}" in namespace "${namespace}" to terminate: ${(e as Error).message}`;
    }
    if (Date.now() >= deadline) return `error when waiting for pod "${name}" in namespace "${namespace}" to terminate: global timeout reached: ${timeoutText}`;
    await sleepMs(1000);
  }
  out(`pod/${name} ${disableEviction ? "deleted" : "evicted"}\n`);
  return undefined;
}

async function drainNode(c: Client, f: Flags, node: string): Promise<number> {
  const timeoutMs = f.timeout !== undefined ? parseGoDuration(f.timeout) : 0;
  await c.call("GET", `/api/v1/nodes/${encodeURIComponent(node)}`);
  await cordonNode(c, node, true);
  const first = await podsForDeletion(c, f, node);
  let error: string[] = first.errors;
  if (error.length === 0) {
    const warnings = [...grouped(first.verdicts, "warning")].map(([msg, pods]) => `${msg}: ${pods.join(", ")}`).join("; ");
    if (warnings) err(`Warning: ${warnings}\n`);
    const deadline = timeoutMs === 0 ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
    const toRemove = first.verdicts.filter((v) => v.remove).map((v) => v.pod);
    const results = await Promise.all(toRemove.map((p) => evictOne(c, p, deadline, formatGoDuration(timeoutMs), f.disableEviction)));
    const failed = results.filter((x): x is string => x !== undefined);
    if (failed.length > 0) {
      const pending = (await podsForDeletion(c, f, node)).verdicts.filter((v) => v.remove);
      if (pending.length > 0) {
        err(`There are pending pods in node "${node}" when an error occurred: ${aggregate(failed)}\n`);
        for (const v of pending) err(`pod/${v.pod.metadata.name}\n`);
      }
      error = failed;
    }
  }
  if (error.length > 0) {
    err(`error: unable to drain node "${node}" due to error: ${aggregate(error)}, continuing command...\n`);
    err(`There are pending nodes to be drained:\n ${node}\n`);
    // checkErr unwraps the aggregate and prints each error on its own line, without an "error: " prefix.
    for (const e of error) err(`${e}\n`);
    return 1;
  }
  out(`node/${node} drained\n`);
  return 0;
}

async function deleteNodes(c: Client, f: Flags, names: string[]): Promise<number> {
  if (names.length === 0) return fail(`error: resource(s) were provided, but no name was specified`);
  const errors: string[] = [];
  for (const name of names) {
    try {
      await c.call("DELETE", `/api/v1/nodes/${encodeURIComponent(name)}`);
      out(`node "${name}" deleted\n`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && f.ignoreNotFound) continue;
      errors.push(e instanceof ApiError ? e.render() : (e as Error).message);
    }
  }
  for (const e of errors) err(`${e}\n`);
  return errors.length > 0 ? 1 : 0;
}

function printStructured(obj: Record<string, unknown>, output: string, kind: string): number {
  if (output === "json") out(`${JSON.stringify(Array.isArray(obj.items) ? { ...obj, kind: "List" } : obj, null, 4)}\n`);
  else if (output === "name") {
    const items = (obj.items as { metadata: { name: string } }[] | undefined) ?? [obj as { metadata: { name: string } }];
    out(items.map((n) => `${kind}/${n.metadata.name}\n`).join(""));
  } else if (output.startsWith("jsonpath=")) out(jsonpath(obj, output.slice(9).replace(/^'(.*)'$/, "$1")));
  else return fail(`error: unable to match a printer suitable for the output format "${output}"`);
  return 0;
}

async function get(c: Client, f: Flags, what: string, name: string | undefined): Promise<number> {
  const structured = f.output !== undefined && f.output !== "wide";
  const accept = structured ? "application/json" : TABLE_ACCEPT;
  if (["nodes", "node", "no"].includes(what)) {
    let p = name ? `/api/v1/nodes/${encodeURIComponent(name)}` : "/api/v1/nodes";
    if (!name && f.fieldSelector) p += `?fieldSelector=${encodeURIComponent(f.fieldSelector)}`;
    const obj = await c.call("GET", p, { accept }) as Record<string, unknown>;
    if (structured) return printStructured(obj, f.output as string, "node");
    const text = printTable(obj as unknown as Table, f.output === "wide", false);
    if (text === "") return fail("No resources found");
    out(text);
    return 0;
  }
  if (["pods", "pod", "po"].includes(what)) {
    const ns = f.namespace ?? "default";
    const all = f.allNamespaces && !name;
    let p = all ? "/api/v1/pods" : `/api/v1/namespaces/${encodeURIComponent(ns)}/pods${name ? `/${encodeURIComponent(name)}` : ""}`;
    if (!name && f.fieldSelector) p += `?fieldSelector=${encodeURIComponent(f.fieldSelector)}`;
    const obj = await c.call("GET", p, { accept }) as Record<string, unknown>;
    if (structured) return printStructured(obj, f.output as string, "pod");
    const text = printTable(obj as unknown as Table, f.output === "wide", all);
    // kubectl reports an empty list on stderr and still succeeds.
    if (text === "") err(all ? "No resources found\n" : `No resources found in ${ns} namespace.\n`);
    out(text);
    return 0;
  }
  return fail(`error: the simulator's kubectl gets nodes and pods only, not "${what}"`);
}

export async function runKubectl(argv: string[]): Promise<number> {
  let parsed;
  try { parsed = parseArgs(argv); } catch (e) { return fail((e as Error).message); }
  const { flags: f, words } = parsed;
  const verb = words[0];
  if (!["get", "delete", "cordon", "uncordon", "drain"].includes(verb ?? "") && f.raw === undefined) {
    return fail(`error: the simulator's kubectl supports get, delete node, cordon, uncordon and drain, not "${words.join(" ")}"`);
  }
  let access: KubeAccess;
  try { access = readKubeconfig(f.kubeconfig); } catch (e) {
    const e2 = e as NodeJS.ErrnoException;
    const why = e2.code === "EACCES" ? "permission denied" : e2.code === "ENOENT" ? "no such file or directory" : e2.message;
    return fail(`error: error loading config file "${f.kubeconfig}": open ${f.kubeconfig}: ${why}`);
  }
  const c = new Client(access);
  try {
    if (f.raw !== undefined) {
      out(JSON.stringify(await c.call("GET", f.raw)));
      return 0;
    }
    switch (verb) {
      case "get": return await get(c, f, words[1] ?? "", words[2]);
      case "delete": {
        // `delete node a b` and `delete node/a`
        const [kind, ...rest] = (words[1] ?? "").includes("/") ? [words[1].split("/")[0], words[1].split("/")[1], ...words.slice(2)] : words.slice(1);
        if (!["nodes", "node", "no"].includes(kind ?? "")) return fail(`error: the simulator's kubectl deletes nodes only, not "${kind ?? ""}"`);
        return await deleteNodes(c, f, rest);
      }
      case "cordon": case "uncordon": {
        if (!words[1]) return fail(`error: USAGE: ${verb} NODE [flags]`);
        await c.call("GET", `/api/v1/nodes/${encodeURIComponent(words[1])}`);
        return await cordonNode(c, words[1], verb === "cordon");
      }
      case "drain":
        if (!words[1]) return fail("error: USAGE: drain NODE [flags]");
        if (f.timeout !== undefined) parseGoDuration(f.timeout);
        return await drainNode(c, f, words[1]);
    }
    return 1;
  } catch (e) {
    if (e instanceof ApiError) return fail(e.render());
    return fail((e as Error).message.startsWith("time: ") ? `invalid argument "${f.timeout}" for "--timeout" flag: ${(e as Error).message}` : (e as Error).message);
  }
}
