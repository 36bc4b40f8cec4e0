// `npm run bench:lifecycle`: day two on the real engine, on test nodes given as `hosts`, with k3s-like
// start-up delays. A rolling upgrade of 3 servers + 3 agents (wall time, each node's restart-to-active time,
// and the longest stretch in which no server answered, sampled every 200 ms); scale-out by one agent and
// scale-in by one agent (wall time and the resources the engine touched). Progress on stderr; the last line
// of stdout is one JSON object.
import { apiSampler, ClusterUnderTest, stateUrns } from "../tests/engine/harness";

const KNOBS = { tokenDelay: 2, apiReadyDelay: 15, nodeReadyDelay: 3, etcdJoinDelay: 3, agentJoinDelay: 1 };
const NEXT = "v1.35.0+k3s1";

function say(line: string): void {
  process.stderr.write(`bench:lifecycle: ${line}\n`);
}

/** Resources a `pulumi up --json` created, updated, replaced or deleted. */
function touched(json: string): string[] {
  const out = new Set<string>();
  for (const line of json.split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    const e = JSON.parse(line) as { resOutputsEvent?: { metadata: { op: string; urn: string } } };
    const m = e.resOutputsEvent?.metadata;
    if (m && m.op !== "same" && !m.urn.includes("pulumi:pulumi:Stack")) out.add(`${m.op} ${m.urn.split("::").pop()}`);
  }
  return [...out].sort();
}

async function main() {
  const c = new ClusterUnderTest({ prefix: "life", servers: 3, agents: 4, firstOctet: 192, knobs: KNOBS, knownHostKeys: true,
    initial: { servers: 3, agents: 3 }, tokenTimeout: 300 });
  const servers = ["life-s0", "life-s1", "life-s2"];
  const agents = ["life-a0", "life-a1", "life-a2"];
  try {
    await c.prepare();
    say("pulumi up of 3+3");
    await c.stack.run(["up", "--yes", "--skip-preview"]);
    await c.waitForReady(6);

    say(`rolling upgrade to ${NEXT}`);
    const before = Object.fromEntries(await Promise.all([...servers, ...agents].map(async (n) => [n, await c.unitTimes(n)] as const)));
    await c.stack.setConfig(c.releaseConfig(NEXT));
    const sampler = apiSampler(servers.map((_, i) => `198.51.100.${192 + i}`));
    const up = await c.stack.run(["up", "--yes", "--skip-preview"]);
    const api = sampler.stop();
    const perNodeMs: Record<string, number | null> = {};
    for (const n of [...servers, ...agents]) {
      const t = await c.unitTimes(n);
      perNodeMs[n] = t.startMs! > before[n].activeMs! ? t.activeMs! - t.startMs! : null;
    }
    const versions = (await c.waitForReady(6)).map((n) => n.version);

    say("scale out by one agent");
    await c.declare(3, 4);
    const out = await c.stack.run(["up", "--yes", "--skip-preview", "--json"]);
    say("scale in by one agent");
    await c.declare(3, 3);
    const inn = await c.stack.run(["up", "--yes", "--skip-preview", "--json"]);
    const listed = (await c.nodeList()).map((n) => n.name).sort();
    const result = {
      upgrade: {
        topology: "3+3", to: NEXT, wallMs: up.ms, allAtRelease: versions.every((v) => v === NEXT),
        perNodeRestartToActiveMs: perNodeMs, longestApiGapMs: api.longestGapMs, apiSamples: api.samples,
      },
      scaleOut: { wallMs: out.ms, touched: touched(out.stdout) },
      scaleIn: { wallMs: inn.ms, touched: touched(inn.stdout), nodesListed: listed },
      resourcesInState: (await stateUrns(c.stack)).length,
    };
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    await c.teardown();
  }
}

main().catch((err) => {
  say(`failed: ${(err as Error).message}`);
  process.exit(1);
});
