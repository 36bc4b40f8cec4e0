// k3s_cluster on real Puppet infrastructure, as a new user would run the seed's examples: nodes (systemd-nspawn,
// real systemd and puppet-agent) run `puppet agent -t` against the test puppetserver, whose PuppetDB listens on
// loopback only — the nodes can reach nothing but the puppetserver. k3s is the simulator, installed by the
// module's binary method (from Hiera, so the node blocks hold the seed's declarations verbatim). Servers
// export once their seven-step check passes; joining nodes get the records in their catalog, tokens sealed to
// them; they really join (CA-pinned, authenticated); no token leaks on the way.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { buildSimulator } from "../../k3s-sim/build";
import { type TestNode } from "../../rig/nodes";
import { startPuppetInfra, type PdbResource, type PuppetInfra } from "../infra/index";
import {
  CmdlineSampler, SIM_KNOBS, SIM_SOURCE, bootNodes, cachedCatalog, classDeclaration, clusterNodes, converge, convergeAll,
  filesContaining, prepareNode, puppetRun, readSecrets, say, serverOrder, transcript, waitForReady, writeHiera,
  type ClusterSecrets, type RunRecord,
} from "./harness";

const MODULE_DIR = path.resolve(__dirname, "../../../puppet/modules/k3s_cluster");
const TYPE = "k3s_cluster_info";

// The seed's examples, verbatim (docs: "Usage Examples" and "Automatic Sequencing").
const SEED_SERVER = `class { 'k3s_cluster':
  node_type          => 'server',
  cluster_init       => true,
  cluster_name       => 'my-cluster',
  auto_token_sharing => true,
}`;
const SEED_AGENT = `class { 'k3s_cluster':
  node_type          => 'agent',
  cluster_name       => 'my-cluster',
  auto_token_sharing => true,
}`;
const SEQ_SERVER = `# Server nodes export tokens only after full readiness verification
class { 'k3s_cluster':
  ensure                => 'present',
  node_type            => 'server',
  cluster_name         => 'production',
  auto_token_sharing   => true,
  token_timeout        => 300,  # Wait up to 5 minutes for token readiness
}`;
const SEQ_AGENT = `# Agent nodes automatically wait for validated tokens
class { 'k3s_cluster':
  ensure                => 'present', 
  node_type            => 'agent',
  cluster_name         => 'production',
  auto_token_sharing   => true,
  wait_for_token       => true,
}`;
const auto = { auto_token_sharing: true };
const PROBE = "sensitive-probe-8c1f0e2a";

const NODES: Record<string, { ip: string; body: string }> = {
  "pup-seed-s1": { ip: "198.51.100.50", body: SEED_SERVER },
  "pup-seed-a1": { ip: "198.51.100.51", body: SEED_AGENT },
  "pup-seed-a2": { ip: "198.51.100.52", body: SEED_AGENT },
  "pup-prod-s1": { ip: "198.51.100.55", body: SEQ_SERVER },
  "pup-prod-s2": { ip: "198.51.100.56", body: SEQ_SERVER },
  "pup-prod-a1": { ip: "198.51.100.57", body: SEQ_AGENT },
  "pup-gate-s1": { ip: "198.51.100.60", body: classDeclaration({ ...auto, node_type: "server", cluster_init: true, cluster_name: "gate", token_timeout: 30 }) },
  "pup-man-s1": { ip: "198.51.100.65", body: classDeclaration({ node_type: "server", cluster_init: true, cluster_name: "manual" }) },
  "pup-man-a1": { ip: "198.51.100.66", body: classDeclaration({ node_type: "agent", cluster_name: "manual",
    token_file: "/etc/rancher/k3s/cluster-token", server_url: "https://198.51.100.65:6443" }) },
  // Also measures how Puppet caches a Sensitive value of a catalog: a probe file that is not the module's.
  "pup-lone-a1": { ip: "198.51.100.68", body: classDeclaration({ ...auto, node_type: "agent", cluster_name: "lonely", token_timeout: 30 }) +
    `\n  file { '/root/sensitive-probe': content => Sensitive('${PROBE}'), mode => '0600' }` },
  // HA as the seed describes it: the first server with cluster_init, the others with cluster_init => false.
  "pup-ha-s1": { ip: "198.51.100.70", body: classDeclaration({ ...auto, node_type: "server", cluster_init: true, cluster_name: "ha" }) },
  "pup-ha-s2": { ip: "198.51.100.71", body: classDeclaration({ ...auto, node_type: "server", cluster_init: false, cluster_name: "ha", token_timeout: 120 }) },
  "pup-ha-s3": { ip: "198.51.100.72", body: classDeclaration({ ...auto, node_type: "server", cluster_init: false, cluster_name: "ha", token_timeout: 120 }) },
  "pup-ha-a1": { ip: "198.51.100.73", body: classDeclaration({ ...auto, node_type: "agent", cluster_name: "ha", token_timeout: 120 }) },
  "pup-ha-a2": { ip: "198.51.100.74", body: classDeclaration({ ...auto, node_type: "agent", cluster_name: "ha", token_timeout: 120 }) },
};
type NodeName = keyof typeof NODES;

/** Which tables of a PuppetDB dump (COPY sections) contain each cluster's server and agent password. */
function tablesHolding(dump: string, secrets: Record<string, ClusterSecrets>): Record<string, { server: string[]; agent: string[] }> {
  const sections = dump.split(/^COPY /m).slice(1).map((sec) => ({ table: sec.slice(0, sec.indexOf(" ")), text: sec }));
  const tables = (needle: string) => [...new Set(sections.filter((x) => x.text.includes(needle)).map((x) => x.table.replace(/^public\./, "")))].sort();
  return Object.fromEntries(Object.entries(secrets).map(([c, s]) =>
    [c, { server: tables(s.serverPassword), agent: s.agentPassword === s.serverPassword ? [] : tables(s.agentPassword) }]));
}

/** k3s's effective configuration files on a node: config.yaml and config.yaml.d/*.yaml. */
async function k3sConfig(n: TestNode): Promise<string> {
  const dir = path.join(n.rootDir, "etc/rancher/k3s");
  const extra = (await fs.readdir(path.join(dir, "config.yaml.d")).catch(() => [] as string[])).filter((f) => f.endsWith(".yaml")).sort();
  const parts = [await fs.readFile(path.join(dir, "config.yaml"), "utf8")];
  for (const f of extra) parts.push(await fs.readFile(path.join(dir, "config.yaml.d", f), "utf8"));
  return parts.join("\n");
}

const unitState = async (n: TestNode, unit: string) => (await n.exec(`systemctl is-active ${unit}`)).stdout.trim();
const output = (r: RunRecord) => r.stdout + r.stderr;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The closing figures: per scenario, the Puppet runs each role needed until a run changed nothing, and wall time. */
const figures: Record<string, { runs: Record<string, number>; seconds: number }> = {};
function scenario(name: string): { runs: (role: string, recs: RunRecord[]) => void; done: () => void } {
  const t0 = Date.now();
  const runs: Record<string, number> = {};
  figures[name] = { runs, seconds: 0 };
  return {
    runs: (role, recs) => { runs[role] = recs.length; },
    done: () => { figures[name].seconds = Math.round((Date.now() - t0) / 1000); },
  };
}

/** What PuppetDB holds, printable: every secret value replaced by what it is, sealed blocks shortened. */
function describeExports(resources: PdbResource[], secrets: Record<string, ClusterSecrets>): string {
  let text = JSON.stringify(resources.map((r) => ({ certname: r.certname, title: r.title, parameters: r.parameters })), null, 2);
  for (const [cluster, s] of Object.entries(secrets)) {
    for (const [value, label] of [[s.server, "server token"], [s.agent, "agent token"], [s.serverPassword, "server password"], [s.agentPassword, "agent password"]]) {
      text = text.split(value).join(`<${cluster} ${label}>`);
    }
  }
  return text.replace(/-----BEGIN PKCS7-----[^"]*-----END PKCS7-----\\n/g, "<PKCS7, sealed to the puppetserver>");
}

describe("k3s_cluster through a real puppetserver (PuppetDB on loopback only), simulated k3s on systemd nodes", () => {
  let infra: PuppetInfra;
  let nodes: Record<NodeName, TestNode>;
  const sampler = new CmdlineSampler();
  const secrets: Record<string, ClusterSecrets> = {};
  const node = (n: NodeName) => nodes[n];
  let lonelyFirst: RunRecord | undefined;

  before(async () => {
    const t0 = Date.now();
    const specs = Object.entries(NODES).map(([name, n]) => ({ name, ip: n.ip, hosts: { "puppet.test": "198.51.100.1" } }));
    // Settled one by one so that whatever did start is stopped by after() even when another part failed.
    const [started, booted, simulator] = await Promise.allSettled([startPuppetInfra(), bootNodes(specs), buildSimulator()]);
    if (started.status === "fulfilled") infra = started.value;
    if (booted.status === "fulfilled") nodes = Object.fromEntries(booted.value.map((n) => [n.name, n])) as Record<NodeName, TestNode>;
    for (const r of [started, booted, simulator]) if (r.status === "rejected") throw r.reason;
    if (simulator.status !== "fulfilled" || booted.status !== "fulfilled") throw new Error("unreachable");
    await Promise.all(booted.value.map((n) => prepareNode(n, simulator.value, infra.serverName)));
    // The readiness-gating server: its API (and so READY=1) comes 45 s after k3s starts, beyond token_timeout.
    await fs.writeFile(path.join(node("pup-gate-s1").rootDir, "etc/k3s-sim.json"), JSON.stringify({ ...SIM_KNOBS, apiReadyDelay: 45 }) + "\n");
    await infra.installModule(MODULE_DIR, "k3s_cluster");
    await writeHiera(infra, { "k3s_cluster::install_method": "binary", "k3s_cluster::binary_source": SIM_SOURCE });
    await infra.writeSiteManifest(Object.entries(NODES).map(([name, n]) =>
      `node '${name}' {\n${n.body.split("\n").map((l) => (l.startsWith("  ") ? l : `  ${l}`)).join("\n")}\n}\n`).join("\n") + "node default {}\n");
    sampler.start();
    say(`infrastructure, ${booted.value.length} nodes and the simulator ready in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
      `(infra ${(infra.startupMs / 1000).toFixed(1)} s); memory MiB ${JSON.stringify(infra.memory())}`);
  });

  after(async () => {
    sampler.stop();
    if (infra) {
      // Every run's output, for reading after a failure (asserted free of tokens; wiped by the next start).
      const dir = path.join(infra.stateDir, "e2e-runs");
      await fs.mkdir(dir, { recursive: true });
      await Promise.all(transcript.map((r, i) => fs.writeFile(path.join(dir, `${String(i).padStart(3, "0")}-${r.node}-${r.label.replace(/[^\w#-]+/g, "_")}.log`),
        `exit ${r.code} after ${r.ms} ms\n${r.stdout}\n--- stderr\n${r.stderr}`)));
      say(`every Puppet run's output: ${dir}`);
    }
    if (infra) say(`memory MiB at the end ${JSON.stringify(infra.memory())}`);
    say(`closing figures — per scenario, Puppet runs each role needed until a run changed nothing, and wall time:\n${
      Object.entries(figures).map(([s, f]) => `  ${s}: ${JSON.stringify(f.runs)}, ${f.seconds} s`).join("\n")}`);
    await Promise.all(Object.values(nodes ?? {}).map((n) => n.stop()));
    await infra?.stop();
  });

  it("nodes reach the puppetserver and nothing else: PuppetDB is not reachable from them", async () => {
    const n = node("pup-seed-a1");
    const pdb = await n.exec("curl -sk --max-time 5 -o /dev/null https://puppet.test:8081/pdb/meta/v1/version; echo \"exit $?\"");
    assert.equal(pdb.stdout.trim(), "exit 7", `PuppetDB must refuse the nodes' connections (curl: couldn't connect): ${pdb.stdout}`);
    const server = await n.exec("curl -sk --max-time 5 -o /dev/null -w '%{http_code}' https://puppet.test:8140/status/v1/simple");
    assert.equal(server.stdout.trim(), "200");
    // The lonely agent's first run starts now: it waits (token_timeout 30 s), and fails a later run (checked further on).
    lonelyFirst = await puppetRun(node("pup-lone-a1"), "agent of a cluster without a server");
  });

  it("the seed's server and agent examples: an agent started before the server waits, then joins; a later agent joins in one run", async () => {
    const sc = scenario("seed examples (1 server, 2 agents, one agent before the server)");
    const early = await puppetRun(node("pup-seed-a1"), "seed agent, before its server");
    assert.equal(early.code, 2);
    assert.match(output(early), /no server of cluster 'my-cluster' has exported verified join information yet; k3s-agent is not started; waiting since .* \(\d+ s of token_timeout 300 s\)/);
    assert.equal(await unitState(node("pup-seed-a1"), "k3s-agent"), "inactive");

    const server = await converge(node("pup-seed-s1"), "seed server");
    sc.runs("server", server);
    const first = output(server[0]);
    for (const step of ["[2/7] k3s service active", "[3/7] Node Ready", "[4/7] Token available", "[5/7] Token format",
      "[6/7] Authentication", "[7/7] API server accessible"]) {
      assert.match(first, new RegExp(`✅ ${step.replace(/[[\]/]/g, "\\$&")}: `), `the server's first run prints ✅ for ${step}`);
    }
    secrets.demo = await readSecrets(node("pup-seed-s1"));
    const exp = await infra.waitForExport(TYPE, { certname: "pup-seed-s1", parameters: { status: "verified" } }, 60_000);
    assert.equal(exp[0].parameters.agent_token, secrets.demo.agent, "the verified export carries the agent-scoped token");
    assert.match(String(exp[0].parameters.verified_at), /^\d{4}-\d\d-\d\dT/);
    assert.ok(!JSON.stringify(exp).includes(secrets.demo.serverPassword), "no server token in clear in the export");

    const again = await converge(node("pup-seed-a1"), "seed agent, after its server exported");
    sc.runs("agent started before the server", [early, ...again]);
    assert.equal(again.length, 1, "the early agent joins in its next run");
    const late = await converge(node("pup-seed-a2"), "seed agent");
    sc.runs("agent started after the server", late);
    assert.equal(late.length, 1, "an agent started after the server's export joins in one run");
    const list = await waitForReady(node("pup-seed-s1"), ["pup-seed-s1", "pup-seed-a1", "pup-seed-a2"]);
    assert.deepEqual(list.map((n) => n.name), ["pup-seed-a1", "pup-seed-a2", "pup-seed-s1"]);
    for (const a of ["pup-seed-a1", "pup-seed-a2"] as const) {
      const cfg = await k3sConfig(node(a));
      assert.match(cfg, /^server: "?https:\/\/198\.51\.100\.50:6443"?$/m, `${a} joins the seed server`);
      assert.match(cfg, /^token-file: /m, `${a} reads its token from a file, not from config.yaml`);
      assert.equal(await unitState(node(a), "k3s-agent"), "active");
    }
    sc.done();
  });

  it("the seed's \"Automatic Sequencing\" example verbatim: two servers started at once, the lowest certname starts the cluster, the other joins it", async () => {
    const sc = scenario("Automatic Sequencing (2 servers at once, 1 agent before them)");
    const early = await puppetRun(node("pup-prod-a1"), "sequencing agent, before the servers");
    assert.match(output(early), /no server of cluster 'production' has exported verified join information yet/);

    const [c1, c2] = await Promise.all([puppetRun(node("pup-prod-s1"), "sequencing server #1"), puppetRun(node("pup-prod-s2"), "sequencing server #1")]);
    for (const r of [c1, c2]) assert.match(output(r), /registered as a candidate; k3s is not started/);
    assert.equal(await unitState(node("pup-prod-s1"), "k3s"), "inactive");
    const [d1, d2] = await Promise.all([puppetRun(node("pup-prod-s1"), "sequencing server #2"), puppetRun(node("pup-prod-s2"), "sequencing server #2")]);
    assert.match(output(d1), /✅ \[7\/7\] API server accessible/, "the lowest certname starts the cluster");
    assert.match(output(d2), /waiting for pup-prod-s1 \(the lowest certname among the candidate servers\) to start the cluster|waiting for pup-prod-s1 to finish starting the cluster/);
    assert.equal(await unitState(node("pup-prod-s2"), "k3s"), "inactive");

    const [r1, r2] = await convergeAll([node("pup-prod-s1"), node("pup-prod-s2")], "sequencing server", 6);
    sc.runs("server starting the cluster", [c1, d1, ...r1]);
    sc.runs("server joining it", [c2, d2, ...r2]);
    secrets.production = await readSecrets(node("pup-prod-s1"));
    assert.match(await k3sConfig(node("pup-prod-s1")), /^cluster-init: true$/m);
    const joined = await k3sConfig(node("pup-prod-s2"));
    assert.match(joined, /^server: "?https:\/\/198\.51\.100\.55:6443"?$/m, "the second server joined the first");
    assert.doesNotMatch(joined, /cluster-init/);
    const s2token = (await fs.readFile(path.join(node("pup-prod-s2").rootDir, "var/lib/rancher/k3s/server/token"), "utf8")).trim();
    assert.equal(s2token, secrets.production.server, "one cluster: the joined server holds the first one's server token");

    const agent = await converge(node("pup-prod-a1"), "sequencing agent");
    sc.runs("agent started before the servers", [early, ...agent]);
    const list = await waitForReady(node("pup-prod-s2"), ["pup-prod-a1", "pup-prod-s1", "pup-prod-s2"]);
    assert.deepEqual(list.map((n) => [n.name, n.roles]), [["pup-prod-a1", ""], ["pup-prod-s1", "control-plane,etcd"], ["pup-prod-s2", "control-plane,etcd"]]);
    const exports = await infra.exportedResources(TYPE, { parameters: { cluster_name: "production", status: "verified" } });
    assert.deepEqual(exports.map((e) => e.certname).sort(), ["pup-prod-s1", "pup-prod-s2"], "both servers export once verified");
    sc.done();
  });

  it("readiness gating: a server whose API is not ready exports nothing until it is (PuppetDB sampled every second)", async () => {
    const sc = scenario("readiness gating (API ready 45 s after start, token_timeout 30)");
    const gate = node("pup-gate-s1");
    const samples: { t: number; status: string; token: boolean }[] = [];
    let sampling = true;
    const watcher = (async () => {
      while (sampling) {
        const e = (await infra.exportedResources(TYPE, { certname: "pup-gate-s1" }).catch(() => []))[0];
        samples.push({ t: Date.now(), status: String(e?.parameters.status ?? "none"), token: e?.parameters.agent_token !== undefined });
        await sleep(1000);
      }
    })();
    const runs: RunRecord[] = [];
    try {
      const r1 = await puppetRun(gate, "gated server #1", { mayFail: true });
      runs.push(r1);
      assert.ok(r1.code === 4 || r1.code === 6, `the first run fails (exit ${r1.code})`);
      assert.match(output(r1), /❌ \[2\/7\] k3s service active: timed out after 3\d s: k3s service is activating/);
      assert.doesNotMatch(output(r1), /✅ \[7\/7\]/);
      for (let i = 2; i <= 6; i++) {
        const r = await puppetRun(gate, `gated server #${i}`, { mayFail: true });
        runs.push(r);
        if (r.code === 0) break;
      }
    } finally {
      sampling = false;
      await watcher;
    }
    const readyAt = Number((await gate.exec("date -d \"$(systemctl show -p ActiveEnterTimestamp --value k3s)\" +%s%3N")).stdout.trim());
    assert.ok(readyAt > 0, "k3s turned active at some point");
    const early = samples.filter((s) => s.t < readyAt);
    const verified = samples.filter((s) => s.status === "verified");
    say(`gated server: k3s active at ${new Date(readyAt).toISOString()}; PuppetDB samples: ${early.length} before (statuses ${[...new Set(early.map((s) => s.status))].join(",")}), ` +
      `first verified sample ${verified[0] ? ((verified[0].t - readyAt) / 1000).toFixed(1) + " s after" : "never"}`);
    assert.ok(early.length >= 30, `PuppetDB was sampled while the API was not ready (${early.length} samples)`);
    assert.ok(early.every((s) => s.status !== "verified" && !s.token), "no join material in PuppetDB before the server was ready");
    assert.ok(verified.length > 0 && verified.every((s) => s.t > readyAt && s.token), "verified, with the agent token, once ready");
    const exp = (await infra.exportedResources(TYPE, { certname: "pup-gate-s1" }))[0];
    assert.ok(Date.parse(String(exp.parameters.verified_at)) >= readyAt - 1000, "verified_at is after the server turned ready");
    sc.runs("server", runs.filter((r) => r.code !== 0));
    secrets.gate = await readSecrets(gate);
    sc.done();
  });

  it("manual mode (token_file, no sharing, as the Pulumi program applies it) joins with the given token and exports nothing", async () => {
    const sc = scenario("manual mode (1 server, 1 agent with token_file)");
    sc.runs("server", await converge(node("pup-man-s1"), "manual server"));
    secrets.manual = await readSecrets(node("pup-man-s1"));
    const tokenFile = path.join(node("pup-man-a1").rootDir, "etc/rancher/k3s/cluster-token");
    await fs.mkdir(path.dirname(tokenFile), { recursive: true });
    await fs.writeFile(tokenFile, secrets.manual.agent + "\n", { mode: 0o600 });
    sc.runs("agent", await converge(node("pup-man-a1"), "manual agent"));
    await waitForReady(node("pup-man-s1"), ["pup-man-s1", "pup-man-a1"]);
    for (const certname of ["pup-man-s1", "pup-man-a1"]) {
      assert.deepEqual(await infra.exportedResources(TYPE, { certname }), [], `${certname} exports nothing`);
    }
    sc.done();
  });

  it("an agent of a cluster that never exports waits (k3s-agent not started), and fails its runs once token_timeout has passed", async () => {
    const first = lonelyFirst;
    assert.ok(first, "the lonely agent's first run happened");
    assert.equal(first.code, 2);
    assert.match(output(first), /no server of cluster 'lonely' has exported verified join information yet; k3s-agent is not started/);
    const since = Number(/^waiting_since: (\d+)$/m.exec(await fs.readFile(path.join(node("pup-lone-a1").rootDir, "var/lib/k3s-cluster/state.yaml"), "utf8"))?.[1]);
    const left = since * 1000 + 31_000 - Date.now();
    if (left > 0) { say(`waiting ${Math.ceil(left / 1000)} s more for the lonely agent's token_timeout (30 s) to pass`); await sleep(left); }
    const run = await puppetRun(node("pup-lone-a1"), "agent of a cluster without a server, after token_timeout", { mayFail: true });
    assert.ok(run.code === 4 || run.code === 6, `the run fails (exit ${run.code})`);
    assert.match(output(run), /no server of cluster 'lonely' has exported verified join information yet; waited \d+ s since .*, more than token_timeout \(30 s\); k3s-agent is not started/);
    assert.equal(await unitState(node("pup-lone-a1"), "k3s-agent"), "inactive");
  });

  it("HA 3 servers + 2 agents: every server exports once verified; joining servers get the server token sealed; an agent fails over when its first pick is stopped", async () => {
    const sc = scenario("HA (3 servers, 2 agents, failover)");
    sc.runs("first server (cluster_init)", await converge(node("pup-ha-s1"), "HA first server"));
    secrets.ha = await readSecrets(node("pup-ha-s1"));
    // Both at once, as a Puppet estate would run them: while one is an etcd learner the other's k3s is
    // refused ("too many learner members"), exits and is restarted by systemd within the same Puppet run.
    const [s2, s3] = await convergeAll([node("pup-ha-s2"), node("pup-ha-s3")], "HA joining server");
    sc.runs("joining server (cluster_init => false)", s2.length >= s3.length ? s2 : s3);
    for (const s of ["pup-ha-s2", "pup-ha-s3"] as const) {
      const dir = path.join(node(s).rootDir, "var/lib/rancher/k3s/server");
      assert.equal((await fs.readFile(path.join(dir, "token"), "utf8")).trim(), secrets.ha.server, `${s} joined with the cluster's server token`);
      assert.equal((await fs.readFile(path.join(dir, "agent-token"), "utf8")).trim(), secrets.ha.agent, `${s} serves agents with the cluster's agent token`);
    }
    const verified = await infra.exportedResources(TYPE, { parameters: { cluster_name: "ha", status: "verified" } });
    assert.deepEqual(verified.map((e) => e.certname).sort(), ["pup-ha-s1", "pup-ha-s2", "pup-ha-s3"], "every server exports once verified");
    for (const e of verified) {
      assert.equal(e.parameters.agent_token, secrets.ha.agent, `${e.certname} exports the cluster's agent-scoped token`);
      assert.match(String(e.parameters.sealed_server_token), /^-----BEGIN PKCS7-----/, `${e.certname} exports its server token sealed only`);
    }
    assert.ok(!JSON.stringify(verified).includes(secrets.ha.serverPassword), "no server token in clear in PuppetDB's exports");

    const titles = ["ha-pup-ha-s1", "ha-pup-ha-s2", "ha-pup-ha-s3"];
    const a1Order = serverOrder("pup-ha-a1", titles);
    sc.runs("agent", await converge(node("pup-ha-a1"), "HA agent"));
    assert.match(await k3sConfig(node("pup-ha-a1")), new RegExp(`^# Written by k3s-collect-cluster-info.sh from the record ${a1Order[0]}\\.$`, "m"),
      `pup-ha-a1 joins its first pick ${a1Order[0]}`);

    const a2Order = serverOrder("pup-ha-a2", titles);
    const victim = a2Order[0].replace(/^ha-/, "") as NodeName;
    say(`pup-ha-a2's order of the servers: ${a2Order.join(", ")}; stopping k3s on its first pick ${victim}`);
    await node(victim).exec("systemctl stop k3s");
    const failover = await converge(node("pup-ha-a2"), "HA agent, its first pick stopped");
    sc.runs("agent whose first pick is stopped", failover);
    const cfg = await k3sConfig(node("pup-ha-a2"));
    assert.match(cfg, new RegExp(`from the record ${a2Order[1]}\\.$`, "m"), `pup-ha-a2 failed over to ${a2Order[1]}`);
    assert.equal(await unitState(node("pup-ha-a2"), "k3s-agent"), "active");
    const live = a2Order[1].replace(/^ha-/, "") as NodeName;
    await waitForReady(node(live), ["pup-ha-a1", "pup-ha-a2"]);
    await node(victim).exec("systemctl start --no-block k3s");
    const names = ["pup-ha-a1", "pup-ha-a2", "pup-ha-s1", "pup-ha-s2", "pup-ha-s3"];
    const list = await waitForReady(node(live), names, 90_000);
    say(`HA cluster nodes: ${JSON.stringify(list)}`);
    assert.deepEqual(list.map((n) => n.name), names);
    sc.done();
  });

  it("the whole-cluster check on a server: every expected node listed once, Ready, with its role; a missing node is named", async () => {
    const s2 = node("pup-ha-s2");
    // One more run: the server's expected-nodes file now lists the agents that exported since its last run.
    await puppetRun(s2, "HA server, refreshing the expected nodes");
    const ok = await s2.exec("k3s-cluster-verify-cluster --timeout 60", { timeoutMs: 90_000 });
    say(`k3s-cluster-verify-cluster on pup-ha-s2:\n${ok.stdout}`);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    for (const [n, role] of [["pup-ha-s1", "server"], ["pup-ha-s2", "server"], ["pup-ha-s3", "server"], ["pup-ha-a1", "agent"], ["pup-ha-a2", "agent"]]) {
      assert.match(ok.stdout, new RegExp(`^✅ ${n} ${role}: Ready$`, "m"));
    }
    assert.match(ok.stdout, /^✅ all 5 expected nodes are Ready with their roles/m);
    const missing = await s2.exec("k3s-cluster-verify-cluster --expect pup-ha-s1=server --expect pup-ha-ghost=agent --expect pup-ha-a1=server --timeout 3 --interval 1");
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /^❌ pup-ha-ghost agent: missing \(not listed by the cluster\)$/m);
    assert.match(missing.stdout, /^❌ pup-ha-a1 server: wrong-role \(listed as agent\)$/m);
    assert.match(missing.stdout, /not every expected node is Ready with its role after \d+ s \(timeout 3 s\): pup-ha-ghost \(missing\), pup-ha-a1 \(wrong-role\)/);
  });

  it("puppet resource k3s_cluster_info lists the records on a node, tokens redacted", async () => {
    const r = await node("pup-ha-a1").exec("puppet resource k3s_cluster_info --color=false");
    assert.equal(r.code, 0, r.stderr);
    for (const t of ["ha-pup-ha-s1", "ha-pup-ha-s2", "ha-pup-ha-s3"]) assert.match(r.stdout, new RegExp(`k3s_cluster_info \\{ '${t}':`));
    assert.match(r.stdout, /agent_token +=> '\[redacted\]'/);
    assert.match(r.stdout, /server_url +=> 'https:\/\/198\.51\.100\.7\d:6443'/);
    assert.ok(!r.stdout.includes(secrets.ha.agentPassword), "no token in puppet resource's output");
  });

  it("the catalog each node caches: 0660 root:root in a 0750 root directory, tokens only sealed (ciphertext); a plain Sensitive value sits there in clear", async () => {
    const report: string[] = [];
    const needles = Object.values(secrets).flatMap((s) => [s.serverPassword, s.agentPassword]);
    for (const n of ["pup-seed-s1", "pup-seed-a1", "pup-prod-s2", "pup-ha-s3", "pup-ha-a2", "pup-man-a1", "pup-lone-a1"] as NodeName[]) {
      const c = await cachedCatalog(node(n));
      const deferred = (c.text.match(/"__ptype":"Deferred","name":"k3s_cluster::unseal"/g) ?? []).length;
      const dir = (await node(n).exec("stat -c '%a %U:%G' /var/cache/puppet/client_data")).stdout.trim();
      report.push(`${n}: ${c.path} ${c.mode} ${c.owner} (directory client_data ${dir}), ${deferred} sealed token(s) as Deferred k3s_cluster::unseal`);
      // What Puppet does on its own (it writes the file with mode 0660 on every run, whatever it had).
      assert.equal(`${c.mode} ${c.owner} ${dir}`, "660 root:root 750 root:root", `${n}: the cached catalog and its directory`);
      assert.ok(!needles.some((x) => c.text.includes(x)), `${n}: no token in the cached catalog`);
    }
    const agentCatalog = (await cachedCatalog(node("pup-ha-a2"))).text;
    assert.match(agentCatalog, /"agent_token":\{"__ptype":"Deferred","name":"k3s_cluster::unseal","arguments":\["-----BEGIN PKCS7-----/);
    const probe = await cachedCatalog(node("pup-lone-a1"));
    const m = /\{"type":"File","title":"\/root\/sensitive-probe".*?"sensitive_parameters":\["content"\]\}/.exec(probe.text);
    assert.ok(m && m[0].includes(`"content":"${PROBE}"`), "a plain Sensitive value is cached in clear, marked in sensitive_parameters");
    report.push(`a Sensitive probe in pup-lone-a1's cached catalog: ${m[0].replace(/"file":"[^"]*",/, "")}`);
    say(`cached catalogs:\n  ${report.join("\n  ")}`);
  });

  it("PuppetDB holds exactly the agent-scoped tokens of sharing clusters, never a server token in clear", async () => {
    const held = await infra.exportedResources(TYPE);
    say(`PuppetDB's exported ${TYPE} resources:\n${describeExports(held, secrets)}`);
    const where = tablesHolding(await infra.dumpDatabase(), secrets);
    say(`tables of PuppetDB's database holding each secret: ${JSON.stringify(where)}`);
    const holds = Object.fromEntries(Object.entries(where).map(([c, w]) => [c, { server: w.server.length > 0, agent: w.agent.length > 0 }]));
    assert.deepEqual(holds, {
      demo: { server: false, agent: true },
      production: { server: false, agent: true },
      gate: { server: false, agent: true },
      manual: { server: false, agent: false },
      ha: { server: false, agent: true },
    });
    for (const [c, w] of Object.entries(where)) {
      assert.ok(w.agent.every((t) => ["catalog_resources", "resource_params", "resource_params_cache"].includes(t)),
        `${c}: the agent token is only in exported resources (${w.agent.join(", ")}), not in facts or reports`);
    }
  });

  it("every file holding a token is root-owned 0600, on every node", async () => {
    const needles = Object.values(secrets).flatMap((s) => [s.serverPassword, s.agentPassword]);
    const loose: string[] = [];
    for (const [name, n] of Object.entries(nodes)) {
      const files = filesContaining(n, needles);
      say(`${name}: files holding a token: ${files.map((f) => `${f.path} ${f.mode} ${f.uid}:${f.gid}`).join(", ") || "none"}`);
      for (const f of files) if (f.uid !== 0 || f.mode !== "600") loose.push(`${name}:${f.path} ${f.mode} ${f.uid}:${f.gid}`);
    }
    assert.deepEqual(loose, [], "token files that are not root 0600");
    assert.ok(filesContaining(node("pup-ha-a2"), [secrets.ha.agentPassword]).length > 0, "an agent holds the token it joined with (else the scan proves nothing)");
  });

  it("no token in Puppet's output, the nodes' journals, the puppetserver's files, PuppetDB's log, reports or any process's arguments", async () => {
    const needles = Object.values(secrets).flatMap((s) => [s.serverPassword, s.agentPassword]);
    const leaks = (text: string) => needles.some((n) => text.includes(n));
    assert.ok(transcript.length >= Object.keys(NODES).length);
    for (const r of transcript) assert.ok(!leaks(r.stdout + r.stderr), `run "${r.label}" on ${r.node} printed a token`);
    for (const [name, n] of Object.entries(nodes)) {
      const journal = await n.exec("journalctl --no-pager -o cat", { timeoutMs: 60_000 });
      assert.ok(journal.stdout.length > 0);
      assert.ok(!leaks(journal.stdout), `${name}'s journal holds a token`);
    }
    // Everything puppetserver keeps (logs, its fact cache, stored reports) and PuppetDB's log.
    const serverDir = path.join(infra.stateDir, "puppetserver");
    const serverFiles = (await fs.readdir(serverDir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile()).map((e) => path.join(e.path, e.name));
    assert.ok(serverFiles.some((f) => f.includes("/reports/")) && serverFiles.some((f) => f.includes("/yaml/facts/")), "reports and the fact cache are scanned");
    for (const f of [...serverFiles, path.join(infra.stateDir, "puppetdb/puppetdb.log")]) {
      assert.ok(!leaks(await fs.readFile(f, "latin1")), `${path.relative(infra.stateDir, f)} holds a token`);
    }
    say(`/proc/*/cmdline sampled ${sampler.samples} times, ${sampler.distinct} distinct command lines`);
    assert.ok(sampler.samples > 100);
    assert.equal(sampler.containing(needles).length, 0, "a process carried a token in its arguments");
  });
});
