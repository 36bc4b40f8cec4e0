// `npm run bench:deploy`: rehearses `pulumi up` for 1+2 and 3+3 on test nodes with k3s-like start-up
// timings, then evaluates the program alone under mocks for 1+10, 1+100 and 3+500 nodes.
// Prints progress to stderr and, as its last line, one JSON object with the figures.
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { runRehearsal } from "../tests/e2e/run-rehearsal";
import type { RehearsalResult, SimKnobs } from "../tests/e2e/rehearse";

// Real k3s: token 1–3 s after start, API ready 10–30 s, node Ready a few seconds later.
const KNOBS: Required<Omit<SimKnobs, "faults">> = {
  tokenDelay: 2,
  apiReadyDelay: 15,
  nodeReadyDelay: 3,
  etcdJoinDelay: 3,
  agentJoinDelay: 1,
};

/** The fastest any orchestrator could be: the simulator's own delays along the longest chain. */
function idealMs(servers: number): number {
  const first = KNOBS.apiReadyDelay + KNOBS.nodeReadyDelay;
  const each = KNOBS.etcdJoinDelay + KNOBS.apiReadyDelay + KNOBS.nodeReadyDelay;
  return (first + (servers - 1) * each + KNOBS.agentJoinDelay) * 1000;
}

function figures(servers: number, agents: number, r: RehearsalResult) {
  const verifications = r.events.filter((e) => e.type.startsWith("pulumi-nodejs:dynamic") && e.ok);
  const firstVerifiedMs = Math.min(...verifications.map((v) => v.endMs));
  const lastVerifiedMs = Math.max(...verifications.map((v) => v.endMs));
  const serverActiveMs = r.unitStarts["e2e-s0"]?.activeMs;
  const agentActive = Object.entries(r.unitStarts)
    .filter(([name]) => name.startsWith("e2e-a"))
    .map(([, u]) => u.activeMs ?? NaN);
  const lastAgentJoinedMs = Math.max(...agentActive);
  const ideal = idealMs(servers);
  const deployMs = Math.max(...r.events.map((e) => e.endMs));
  const firstServer = r.unitStarts["e2e-s0"] ?? {};
  const agentStarts = Object.entries(r.unitStarts).filter(([n]) => n.startsWith("e2e-a")).map(([, u]) => u.startMs ?? NaN);
  const lastServer = r.unitStarts[`e2e-s${servers - 1}`] ?? {};
  // Where the wall time goes along the chain: what the simulator's delays account for, and the rest
  // (node boot, SSH steps, Puppet's own run) that an ideal orchestrator would still pay once per hop.
  const chain = {
    untilFirstServerK3sStartMs: firstServer.startMs ?? null,
    firstServerStartToActiveMs: firstServer.startMs !== undefined && firstServer.activeMs !== undefined ? firstServer.activeMs - firstServer.startMs : null,
    firstActiveToVerifiedMs: firstServer.activeMs !== undefined ? firstVerifiedMs - firstServer.activeMs : null,
    lastServerActiveToVerifiedMs: lastServer.activeMs !== undefined ? lastVerifiedMs - lastServer.activeMs : null,
    verifiedToAgentK3sStartMs: agents > 0 ? Math.max(...agentStarts) - firstVerifiedMs : null,
  };
  return {
    topology: `${servers}+${agents}`,
    ok: r.ok,
    error: r.error,
    // What `pulumi up` would take: until the last resource finished (the rehearsal then gathers evidence).
    wallMs: deployMs,
    rehearsalWallMs: r.wallMs,
    idealCriticalPathMs: ideal,
    ratio: Number((deployMs / ideal).toFixed(2)),
    serverReadyToVerifiedMs: serverActiveMs === undefined ? null : firstVerifiedMs - serverActiveMs,
    verifiedToLastAgentJoinedMs: agents > 0 ? lastAgentJoinedMs - lastVerifiedMs : null,
    nodesListed: r.nodeList.length,
    chain,
    peakRssMb: r.peakRssMb,
  };
}

function evaluate(servers: number, agents: number) {
  const script = path.join(__dirname, "evaluate-program.ts");
  const run = spawnSync(process.execPath, ["--import", "tsx", script, String(servers), String(agents)], {
    encoding: "utf8",
    cwd: path.resolve(__dirname, ".."),
  });
  const last = run.stdout.trim().split("\n").pop() ?? "{}";
  return JSON.parse(last) as { servers: number; agents: number; resources: number; ms: number; peakRssMb: number };
}

async function main() {
  const deploys = [];
  for (const [servers, agents, firstOctet] of [
    [1, 2, 140],
    [3, 3, 150],
  ]) {
    process.stderr.write(`bench:deploy: rehearsing ${servers}+${agents} (ideal ${idealMs(servers) / 1000} s)\n`);
    const { result } = await runRehearsal({
      clusterName: `bench-${servers}x${agents}`,
      servers,
      agents,
      firstOctet,
      knobs: KNOBS,
      tokenTimeout: 300,
      pollInterval: 1,
    });
    const f = figures(servers, agents, result);
    process.stderr.write(`bench:deploy: ${JSON.stringify(f)}\n`);
    deploys.push(f);
  }
  const evaluation = [];
  for (const [servers, agents] of [
    [1, 10],
    [1, 100],
    [3, 500],
  ]) {
    process.stderr.write(`bench:deploy: evaluating the program under mocks for ${servers}+${agents}\n`);
    const e = evaluate(servers, agents);
    evaluation.push({ ...e, msPerNode: Number((e.ms / (servers + agents)).toFixed(2)) });
  }
  process.stdout.write(JSON.stringify({ deploys, evaluation }) + "\n");
}

main().catch((err) => {
  process.stderr.write(`bench:deploy failed: ${err.message}\n`);
  process.exit(1);
});
