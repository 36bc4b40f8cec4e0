import { hostPath } from "./paths";
import { KUBECONFIG, KubeAccess, readKubeconfig } from "./kubeconfig";
import { request } from "./http-client";
import { jsonpath } from "./jsonpath";

const TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

interface Table { columnDefinitions: { name: string; priority: number }[]; rows: { cells: string[] }[]; }

// kubectl's tabwriter: columns padded to the widest cell plus three spaces.
function printTable(t: Table, wide: boolean): string {
  const cols = t.columnDefinitions.map((c, i) => ({ ...c, i })).filter((c) => wide || c.priority === 0);
  if (t.rows.length === 0) return "";
  const rows = [cols.map((c) => c.name.toUpperCase()), ...t.rows.map((r) => cols.map((c) => String(r.cells[c.i])))];
  const widths = cols.map((_c, j) => Math.max(...rows.map((r) => r[j].length)));
  return rows.map((r) => r.map((cell, j) => (j === r.length - 1 ? cell : cell.padEnd(widths[j] + 3))).join("")).join("\n") + "\n";
}

function fail(msg: string): number {
  process.stderr.write(`${msg}\n`);
  return 1;
}

export async function runKubectl(argv: string[]): Promise<number> {
  let output: string | undefined;
  let kubeconfig = process.env.KUBECONFIG || hostPath(KUBECONFIG);
  let raw: string | undefined;
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const opt = (name: string, short?: string): string | undefined => {
      if (a === `--${name}` || (short && a === `-${short}`)) return argv[++i];
      if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
      if (short && a.startsWith(`-${short}`) && a.length > 2) return a.slice(2).replace(/^=/, "");
      return undefined;
    };
    const o = opt("output", "o"); if (o !== undefined) { output = o; continue; }
    const k = opt("kubeconfig"); if (k !== undefined) { kubeconfig = k; continue; }
    const r = opt("raw"); if (r !== undefined) { raw = r; continue; }
    words.push(a);
  }
  if (words[0] !== "get") return fail(`error: the simulator's kubectl supports "get" only, not "${words.join(" ")}"`);
  let access: KubeAccess;
  try { access = readKubeconfig(kubeconfig); } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "EACCES" ? "permission denied" : err.code === "ENOENT" ? "no such file or directory" : err.message;
    return fail(`error: error loading config file "${kubeconfig}": open ${kubeconfig}: ${why}`);
  }
  const hostPort = new URL(access.server).host;
  const call = async (p: string, accept: string) => {
    try {
      return await request(`${access.server}${p}`, { ca: access.ca, cert: access.cert, key: access.key, headers: { accept } });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ECONNREFUSED") throw new Error(`The connection to the server ${hostPort} was refused - did you specify the right host or port?`);
      throw new Error(`Unable to connect to the server: ${(e as Error).message}`);
    }
  };
  try {
    if (raw !== undefined) {
      const r = await call(raw, "application/json");
      if (r.status !== 200) return fail(`Error from server (${statusReason(r.body)}): ${statusMessage(r.body)}`);
      process.stdout.write(r.body.toString());
      return 0;
    }
    if (!["nodes", "node", "no"].includes(words[1] ?? "")) return fail(`error: the simulator's kubectl gets nodes only`);
    const name = words[2];
    const p = name ? `/api/v1/nodes/${encodeURIComponent(name)}` : "/api/v1/nodes";
    const structured = output !== undefined && output !== "wide";
    const r = await call(p, structured ? "application/json" : TABLE_ACCEPT);
    if (r.status !== 200) return fail(`Error from server (${statusReason(r.body)}): ${statusMessage(r.body)}`);
    const obj = JSON.parse(r.body.toString()) as Record<string, unknown>;
    if (!structured) {
      const text = printTable(obj as unknown as Table, output === "wide");
      if (text === "") return fail("No resources found");
      process.stdout.write(text);
    } else if (output === "json") process.stdout.write(`${JSON.stringify(obj.kind === "NodeList" ? { ...obj, kind: "List" } : obj, null, 4)}\n`);
    else if (output === "name") {
      const items = (obj.items as { metadata: { name: string } }[] | undefined) ?? [obj as { metadata: { name: string } }];
      process.stdout.write(items.map((n) => `node/${n.metadata.name}\n`).join(""));
    } else if (output !== undefined && output.startsWith("jsonpath=")) process.stdout.write(jsonpath(obj, output.slice(9).replace(/^'(.*)'$/, "$1")));
    else return fail(`error: unable to match a printer suitable for the output format "${output}"`);
    return 0;
  } catch (e) {
    return fail((e as Error).message);
  }
}

function statusMessage(body: Buffer): string {
  try { return (JSON.parse(body.toString()) as { message: string }).message; } catch { return body.toString().trim(); }
}
function statusReason(body: Buffer): string {
  try { return (JSON.parse(body.toString()) as { reason: string }).reason; } catch { return "Unknown"; }
}
