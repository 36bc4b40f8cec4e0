// `npm run bench:deploy`: the real `pulumi up` of 1+2 and 3+3 on test nodes given as `hosts`, against the
// ideal: the sum, along the critical chain, of each step's own standalone duration — node boot, every
// bootstrap step, `puppet apply`, k3s's start-up delays (inside the verification and the membership waits),
// one verification per server, the whole-cluster check — measured by running the very same steps one at a
// time with nothing else going on. Their ratio
// is what orchestration adds. Also: a no-op `pulumi up`, the toolchain build (cold, as recorded when it was
// built, and cached), and the program evaluated under mocks for 1+10, 1+100 and 3+500.
// Progress on stderr; the last line of stdout is one JSON object.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { remoteCommandProvider } from "../components/remote/command";
import { serverTokenProvider } from "../components/server-token";
import { ClusterUnderTest } from "../tests/engine/harness";
import { ensureToolchain, toolchainBin } from "../scripts/pulumi-toolchain";

// Real k3s: token 1–3 s after start, API ready 10–30 s, node Ready a few seconds later.
const KNOBS = { tokenDelay: 2, apiReadyDelay: 15, nodeReadyDelay: 3, etcdJoinDelay: 3, agentJoinDelay: 1 };
// A fixed token: the standalone replay then reuses every step's recorded input, token file included.
const TOKEN = "3b9f0c1d2e4a5b6c7d8e9f0a1b2c3d4e";

function say(line: string): void {
  process.stderr.write(`bench:deploy: ${line}\n`);
}

interface StateResource { urn: string; type: string; inputs: Record<string, unknown> }

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** `stack export --show-secrets` writes a secret as {sig, plaintext: <JSON text>}: the provider wants the value. */
function unwrapSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (SECRET_SIG in o && typeof o.plaintext === "string") return unwrapSecrets(JSON.parse(o.plaintext));
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

/** The state's dynamic resources by name, inputs decrypted (the replay needs the real stdin and key). */
async function recordedSteps(c: ClusterUnderTest): Promise<Map<string, StateResource>> {
  const state = JSON.parse(await c.stack.exportState(true)) as { deployment: { resources: StateResource[] } };
  const out = new Map<string, StateResource>();
  for (const r of state.deployment.resources) {
    if (r.type.startsWith("pulumi-nodejs:dynamic")) out.set(r.urn.split("::").pop()!, { ...r, inputs: unwrapSecrets(r.inputs) as Record<string, unknown> });
  }
  return out;
}

/** Runs one recorded step alone, as the provider does under the engine; returns its duration. */
async function replay(steps: Map<string, StateResource>, name: string): Promise<number> {
  const r = steps.get(name);
  if (!r) throw new Error(`no step ${name} in the state`);
  const started = Date.now();
  const provider = r.type.endsWith(":ServerToken") ? serverTokenProvider : remoteCommandProvider;
  await provider.create!(r.inputs);
  return Date.now() - started;
}

async function deploy(servers: number, agents: number, firstOctet: number) {
  const prefix = `bench-${servers}x${agents}`;
  const c = new ClusterUnderTest({
    prefix, servers, agents, firstOctet, knobs: KNOBS, knownHostKeys: true, tokenTimeout: 300,
    config: { "k3s-cluster:autoTokenSharing": "false" }, secrets: { "k3s-cluster:token": TOKEN },
  });
  try {
    const bootStarted = Date.now();
    await c.prepare();
    const bootMs = Date.now() - bootStarted;
    say(`${prefix}: pulumi up (k3s-like delays: API ready ${KNOBS.apiReadyDelay} s after start)`);
    const up = await c.stack.run(["up", "--yes", "--skip-preview"]);
    const listed = (await c.waitForReady(servers + agents, 30)).filter((n) => n.status === "Ready").length;
    const noop = await c.stack.run(["up", "--yes", "--skip-preview"]);
    const steps = await recordedSteps(c);

    say(`${prefix}: pulumi destroy, then each step alone on the same (now clean) machines`);
    await c.stack.run(["destroy", "--yes", "--skip-preview"]);
    const node = (role: "s" | "a", i: number) => `${prefix}-${prefix}-${role}${i}`;
    const d: Record<string, number> = {};
    const time = async (name: string) => (d[name] = await replay(steps, name));
    // Every node's preparation, Puppet included, runs alongside the first server's: off the chain except the
    // first server's own.
    for (const [role, count] of [["s", servers], ["a", agents]] as const) {
      for (let i = 0; i < count; i++) for (const step of ["cloud-init", "puppet-agent", "modules", "puppet-apply"]) await time(`${node(role, i)}-${step}`);
    }
    const join = async (role: "s" | "a", i: number) => {
      // The first server has a token file too when the token is the user's (as here).
      if (steps.has(`${node(role, i)}-token-file`)) await time(`${node(role, i)}-token-file`);
      await time(`${node(role, i)}-start`);
      if (role === "s") await time(`${node(role, i)}-token`);
    };
    await join("s", 0);
    await time(`${node("s", 0)}-member`);
    for (let a = 0; a < agents; a++) {
      await join("a", a);
      await time(`${node("a", a)}-member`);
    }
    await time(`${prefix}-kubeconfig`);
    for (let i = 1; i < servers; i++) {
      await join("s", i);
      await time(`${node("s", i)}-member`);
    }
    await time(`${prefix}-cluster-check`);
    // The longest chain: the first server's preparation and join; then, in parallel, the agents' joins, the
    // kubeconfig read and the joining servers one after another; then the whole-cluster check.
    const sum = (names: string[]) => names.reduce((t, n) => t + (d[n] ?? 0), 0);
    const s0 = sum(["cloud-init", "puppet-agent", "modules", "puppet-apply", "start", "token"].map((st) => `${node("s", 0)}-${st}`));
    const agentHop = Math.max(0, ...Array.from({ length: agents }, (_, a) => sum(["token-file", "start", "member"].map((st) => `${node("a", a)}-${st}`))));
    // Joining servers one after another, then the last server's membership (members are chained too).
    let serverHops = d[`${node("s", servers - 1)}-member`];
    for (let i = 1; i < servers; i++) serverHops += sum(["token-file", "start", "token"].map((st) => `${node("s", i)}-${st}`));
    const idealMs = bootMs + s0 + Math.max(agentHop, d[`${prefix}-kubeconfig`], serverHops) + d[`${prefix}-cluster-check`];
    const wallMs = bootMs + up.ms;
    await c.stack.run(["destroy", "--yes", "--skip-preview"]);
    return {
      topology: `${servers}+${agents}`,
      nodesListedReady: listed,
      wallMs,
      upMs: up.ms,
      idealMs,
      ratio: Number((wallMs / idealMs).toFixed(2)),
      noopUpMs: noop.ms,
      chainMs: { bootMs, firstServerMs: s0, agentJoinMs: agentHop, joiningServersMs: serverHops, kubeconfigMs: d[`${prefix}-kubeconfig`],
        clusterCheckMs: d[`${prefix}-cluster-check`] },
      stepsMs: d,
    };
  } finally {
    await c.teardown();
  }
}

function evaluate(servers: number, agents: number) {
  const run = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "evaluate-program.ts"), String(servers), String(agents)], {
    encoding: "utf8", cwd: path.resolve(__dirname, ".."),
  });
  const last = run.stdout.trim().split("\n").pop() ?? "{}";
  const e = JSON.parse(last) as { servers: number; agents: number; resources: number; ms: number; peakRssMb: number };
  return { ...e, msPerNode: Number((e.ms / (servers + agents)).toFixed(2)) };
}

async function main() {
  const cachedStarted = Date.now();
  ensureToolchain();
  const toolchain = {
    coldBuildSeconds: (JSON.parse(fs.readFileSync(path.join(toolchainBin(), ".complete"), "utf8")) as { builtSeconds: number }).builtSeconds,
    cachedSeconds: (Date.now() - cachedStarted) / 1000,
  };
  const deploys = [];
  for (const [servers, agents, firstOctet] of [[1, 2, 140], [3, 3, 150]]) {
    const f = await deploy(servers, agents, firstOctet);
    say(JSON.stringify(f));
    deploys.push(f);
  }
  const evaluation = [[1, 10], [1, 100], [3, 500]].map(([s, a]) => {
    say(`evaluating the program under mocks for ${s}+${a}`);
    return evaluate(s, a);
  });
  process.stdout.write(JSON.stringify({ toolchain, deploys, evaluation }) + "\n");
}

main().catch((err) => {
  say(`failed: ${(err as Error).message}`);
  process.exit(1);
});
