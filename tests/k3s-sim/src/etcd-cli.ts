import { hostPath } from "./paths";
import { KUBECONFIG, readKubeconfig } from "./kubeconfig";
import { request } from "./http-client";

// Simulator-only: real k3s ships no etcd client; operators run etcdctl with the certificates under
// server/tls/etcd against https://127.0.0.1:2379. This command answers the same questions, in etcdctl's
// output formats, from the local server's view, authenticated like kubectl with the admin kubeconfig.
//   k3s sim-etcd member list [-w simple|json]
//   k3s sim-etcd endpoint health [--cluster]

interface Members {
  members: { ID: number; name: string; peerURLs: string[]; clientURLs: string[]; isLearner?: boolean }[];
  self: string; leader: string | null; quorum: boolean; alive: string[]; rev: number;
}

const hex = (id: number) => id.toString(16);

function fail(msg: string): number {
  process.stderr.write(`Error: ${msg}\n`);
  return 1;
}

export async function runSimEtcd(argv: string[]): Promise<number> {
  let kubeconfig = process.env.KUBECONFIG || hostPath(KUBECONFIG);
  let format = "simple";
  let cluster = false;
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--?([\w-]+)(?:=(.*))?$/.exec(a);
    if (!m) { words.push(a); continue; }
    if (m[1] === "w" || m[1] === "write-out") format = m[2] ?? argv[++i] ?? "";
    else if (m[1] === "kubeconfig") kubeconfig = m[2] ?? argv[++i] ?? "";
    else if (m[1] === "cluster") cluster = m[2] === undefined || m[2] === "true";
    else return fail(`unknown flag: ${a}`);
  }
  const cmd = words.join(" ");
  if (cmd !== "member list" && cmd !== "endpoint health") return fail(`unknown command "${cmd}": sim-etcd supports "member list" and "endpoint health"`);
  if (format !== "simple" && format !== "json") return fail(`unsupported output format "${format}" (simple, json)`);
  let info: Members;
  try {
    const k = readKubeconfig(kubeconfig);
    const r = await request(`${k.server}/v1-k3s/sim/etcd/members`, { ca: k.ca, cert: k.cert, key: k.key });
    if (r.status !== 200) return fail(`${k.server}: HTTP ${r.status}`);
    info = JSON.parse(r.body.toString()) as Members;
  } catch (e) {
    return fail((e as Error).message);
  }
  if (cmd === "member list") {
    if (format === "json") {
      const selfId = parseInt(info.self, 16);
      process.stdout.write(`${JSON.stringify({ header: { cluster_id: 0x1c2c3c4c5c6c, member_id: selfId, raft_term: 2, revision: info.rev }, members: info.members })}\n`);
    } else {
      for (const m of info.members) {
        process.stdout.write(`${hex(m.ID)}, started, ${m.name}, ${m.peerURLs.join(",")}, ${m.clientURLs.join(",")}, ${m.isLearner === true}\n`);
      }
    }
    return 0;
  }
  // A member is healthy when it is up and the cluster can commit a proposal, which takes a quorum.
  const targets = cluster ? info.members : info.members.filter((m) => hex(m.ID) === info.self.replace(/^0+/, ""));
  let unhealthy = false;
  for (const m of targets) {
    const ok = info.quorum && info.alive.map((id) => id.replace(/^0+/, "")).includes(hex(m.ID));
    if (ok) process.stdout.write(`${m.clientURLs[0]} is healthy: successfully committed proposal: took = 1.52ms\n`);
    else { unhealthy = true; process.stderr.write(`${m.clientURLs[0]} is unhealthy: failed to commit proposal: context deadline exceeded\n`); }
  }
  return unhealthy ? fail("unhealthy cluster") : 0;
}
