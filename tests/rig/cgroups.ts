// The host's PID 1 is not systemd, so each node's launcher gets its own cgroup in the named `systemd`
// hierarchy and in the unified one before systemd-nspawn starts; otherwise concurrent nodes collide on
// nspawn's payload/supervisor cgroups. The same cgroup is how a node is stopped completely: a node's
// systemd outlives a killed nspawn until every process in its cgroup is killed.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { sleep } from "./sh";

const HIERARCHIES = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"];
const GROUP = "k3s-cluster-tests";

export function cgroupDirs(node: string): string[] {
  return HIERARCHIES.map((h) => path.join(h, GROUP, node));
}

/** Shell lines that move the current shell into the node's cgroups (run right before exec nspawn). */
export function enterCgroupScript(node: string): string {
  return cgroupDirs(node)
    .map((d) => `mkdir -p '${d}' && echo $$ > '${d}/cgroup.procs'`)
    .join("\n");
}

async function pidsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return pids;
  }
  const procs = await fs.readFile(path.join(dir, "cgroup.procs"), "utf8").catch(() => "");
  for (const line of procs.split("\n")) if (line.trim()) pids.push(Number(line));
  for (const e of entries) if (e.isDirectory()) pids.push(...(await pidsUnder(path.join(dir, e.name))));
  return pids;
}

async function removeTree(dir: string): Promise<void> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  await fs.rmdir(dir).catch(() => undefined);
}

export async function nodePids(node: string): Promise<number[]> {
  const all = await Promise.all(cgroupDirs(node).map(pidsUnder));
  return [...new Set(all.flat())];
}

/** SIGKILLs every process of the node until none is left (at most 10 s), then removes its cgroups. */
export async function killNode(node: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = await nodePids(node);
    if (pids.length === 0) break;
    if (Date.now() > deadline) throw new Error(`rig: processes of node ${node} survived SIGKILL for 10 s: ${pids.join(" ")}`);
    for (const pid of pids) {
      try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
    }
    await sleep(100);
  }
  for (const d of cgroupDirs(node)) await removeTree(d);
}
