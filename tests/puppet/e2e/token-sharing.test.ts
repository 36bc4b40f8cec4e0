// k3s_cluster on real Puppet infrastructure: nodes (systemd-nspawn, real systemd and puppet-agent) run
// `puppet agent -t` against the test puppetserver with PuppetDB; k3s is the simulator, installed by the
// module's binary method. Servers export their cluster's join material, agents collect it and really join
// (CA-pinned, authenticated to the server's supervisor), and no token leaks on the way.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { buildSimulator } from "../../k3s-sim/build";
import { type TestNode } from "../../rig/nodes";
import { startPuppetInfra, type PdbResource, type PuppetInfra } from "../infra/index";
import {
  CmdlineSampler, SIM_SOURCE, bootNodes, clusterNodes, converge, filesContaining, prepareNode, puppetRun, readSecrets, say,
  siteManifest, transcript, waitForReady, type ClusterSecrets, type RunRecord,
} from "./harness";

const MODULE_DIR = path.resolve(__dirname, "../../../puppet/modules/k3s_cluster");
const VERSION = "v1.34.3+k3s1";
const TYPE = "k3s_cluster_info";

const common = { install_method: "binary", binary_source: SIM_SOURCE, k3s_version: VERSION };
const auto = { ...common, auto_token_sharing: true };

const NODES = {
  "pup-demo-s1": { ip: "198.51.100.50", params: { ...auto, node_type: "server", cluster_init: true, cluster_name: "demo" } },
  "pup-demo-a1": { ip: "198.51.100.51", params: { ...auto, node_type: "agent", cluster_name: "demo", wait_for_token: true, token_timeout: 240 } },
  "pup-demo-a2": { ip: "198.51.100.52", params: { ...auto, node_type: "agent", cluster_name: "demo", wait_for_token: true, token_timeout: 60 } },
  "pup-other-s1": { ip: "198.51.100.55", params: { ...auto, node_type: "server", cluster_init: true, cluster_name: "other" } },
  "pup-man-s1": { ip: "198.51.100.60", params: { ...common, auto_token_sharing: false, node_type: "server", cluster_init: true, cluster_name: "manual" } },
  "pup-man-a1": { ip: "198.51.100.61", params: { ...common, auto_token_sharing: false, node_type: "agent", cluster_name: "manual",
    token_file: "/etc/rancher/k3s/cluster-token", server_url: "https://198.51.100.60:6443" } },
  "pup-lone-a1": { ip: "198.51.100.65", params: { ...auto, node_type: "agent", cluster_name: "lonely", wait_for_token: true, token_timeout: 30 } },
  "pup-ha-s1": { ip: "198.51.100.70", params: { ...auto, node_type: "server", cluster_init: true, cluster_name: "ha", share_server_token: true } },
  "pup-ha-s2": { ip: "198.51.100.71", params: { ...auto, node_type: "server", cluster_init: false, cluster_name: "ha", share_server_token: true, wait_for_token: true, token_timeout: 120 } },
  "pup-ha-s3": { ip: "198.51.100.72", params: { ...auto, node_type: "server", cluster_init: false, cluster_name: "ha", share_server_token: true, wait_for_token: true, token_timeout: 120 } },
  "pup-ha-a1": { ip: "198.51.100.73", params: { ...auto, node_type: "agent", cluster_name: "ha", wait_for_token: true, token_timeout: 120 } },
} as const;
type NodeName = keyof typeof NODES;

/** Which tables of a PuppetDB dump (COPY sections) contain each cluster's server and agent password. */
function tablesHolding(dump: string, secrets: Record<string, ClusterSecrets>): Record<string, { server: string[]; agent: string[] }> {
  const sections = dump.split(/^COPY /m).slice(1).map((sec) => ({ table: sec.slice(0, sec.indexOf(" ")), text: sec }));
  const tables = (needle: string) => [...new Set(sections.filter((x) => x.text.includes(needle)).map((x) => x.table))].sort();
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

/** Runs each role needed until it changed nothing, and the wall time of those runs: the closing figures. */
const figures: Record<string, { changingRuns: number; seconds: number }> = {};
function record(name: string, runs: RunRecord[]): void {
  figures[name] = { changingRuns: runs.length, seconds: Math.round(runs.reduce((s, r) => s + r.ms, 0) / 100) / 10 };
}

/** What PuppetDB holds, printable: every secret value replaced by what it is. */
function describeExports(resources: PdbResource[], secrets: Record<string, ClusterSecrets>): string {
  const names: [string, string][] = [];
  for (const [cluster, s] of Object.entries(secrets)) {
    names.push([s.server, `<${cluster} server token>`], [s.agent, `<${cluster} agent token>`],
      [s.serverPassword, `<${cluster} server password>`], [s.agentPassword, `<${cluster} agent password>`]);
  }
  let text = JSON.stringify(resources.map((r) => ({ certname: r.certname, title: r.title, parameters: r.parameters })), null, 2);
  for (const [value, label] of names) text = text.split(value).join(label);
  return text;
}

describe("k3s_cluster on a real puppetserver + PuppetDB, simulated k3s on systemd nodes", () => {
  let infra: PuppetInfra;
  let nodes: Record<NodeName, TestNode>;
  const sampler = new CmdlineSampler();
  const secrets: Record<string, ClusterSecrets> = {};
  const node = (n: NodeName) => nodes[n];
  let lonely: Promise<RunRecord> = Promise.reject(new Error("the lonely agent's run was never started"));
  lonely.catch(() => undefined);

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
    await infra.installModule(MODULE_DIR, "k3s_cluster");
    await infra.writeSiteManifest(siteManifest(Object.fromEntries(Object.entries(NODES).map(([n, v]) => [n, v.params]))));
    sampler.start();
    say(`infrastructure, ${booted.value.length} nodes and the simulator ready in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
      `(infra ${(infra.startupMs / 1000).toFixed(1)} s); memory MiB ${JSON.stringify(infra.memory())}`);
  });

  after(async () => {
    sampler.stop();
    if (infra) say(`memory MiB at the end ${JSON.stringify(infra.memory())}`);
    say(`Puppet runs per node until converged (changing runs, seconds): ${JSON.stringify(figures)}`);
    await Promise.all(Object.values(nodes ?? {}).map((n) => n.stop()));
    await infra?.stop();
  });

  it("a second cluster's server converges and exports its own cluster only", async () => {
    record("pup-other-s1", await converge(node("pup-other-s1"), "other server"));
    const exports = await infra.waitForExport(TYPE, { certname: "pup-other-s1" }, 60_000);
    assert.ok(exports.every((e) => e.parameters.cluster_name === "other"), JSON.stringify(exports.map((e) => e.parameters.cluster_name)));
    secrets.other = await readSecrets(node("pup-other-s1"));
  });

  it("an agent started before its server exported waits for the token and joins in one run; a later agent joins too", async () => {
    // Started first: its catalog is compiled while PuppetDB holds only the other cluster's export.
    const early = puppetRun(node("pup-demo-a1"), "demo agent started before the server");
    say("giving the early agent 5 s to compile its catalog and start polling PuppetDB before its server runs");
    await new Promise((r) => setTimeout(r, 5_000));
    assert.deepEqual(await infra.exportedResources(TYPE, { parameters: { cluster_name: "demo" } }), [],
      "the demo cluster must not have exported yet when its first agent starts");
    record("pup-demo-s1", await converge(node("pup-demo-s1"), "demo server"));
    secrets.demo = await readSecrets(node("pup-demo-s1"));
    const first = await early;
    assert.equal(first.code, 2, "the early agent's single run applies the join");
    assert.match(first.stdout + first.stderr, /polling PuppetDB/, "the early agent did wait for the export");
    const active = await node("pup-demo-a1").exec("systemctl is-active k3s-agent");
    assert.equal(active.stdout.trim(), "active", "k3s-agent runs after the early agent's first run");
    const again = await converge(node("pup-demo-a1"), "demo early agent, after its first run");
    record("pup-demo-a1", [first, ...again]);
    assert.equal(again.length, 0, "the early agent's second run changes nothing");
    record("pup-demo-a2", await converge(node("pup-demo-a2"), "demo agent"));

    const list = await waitForReady(node("pup-demo-s1"), ["pup-demo-s1", "pup-demo-a1", "pup-demo-a2"]);
    say(`demo cluster nodes: ${JSON.stringify(list)}`);
    assert.deepEqual(list.map((n) => n.name), ["pup-demo-a1", "pup-demo-a2", "pup-demo-s1"]);
    // The other cluster's export was there all along; nobody of demo joined it.
    assert.deepEqual((await clusterNodes(node("pup-other-s1"))).map((n) => n.name), ["pup-other-s1"]);
    for (const a of ["pup-demo-a1", "pup-demo-a2"] as const) {
      const cfg = await k3sConfig(node(a));
      assert.match(cfg, /^server: "?https:\/\/198\.51\.100\.50:6443"?$/m, `${a} joins demo's server`);
      assert.match(cfg, /^token-file: /m, `${a} reads its token from a file, not from config.yaml`);
      assert.doesNotMatch(cfg, /198\.51\.100\.55/, `${a} must not use the other cluster's server`);
      const collected = await fs.readdir(path.join(node(a).rootDir, "etc/rancher/k3s/cluster-info"));
      assert.ok(collected.length > 0 && collected.every((f) => f.startsWith("demo-")), `${a} collected ${collected.join(", ")}`);
    }
  });

  it("PuppetDB holds the agent-scoped token only, never the server token of a cluster that does not share it", async () => {
    const held = await infra.exportedResources(TYPE);
    say(`PuppetDB's exported ${TYPE} resources:\n${describeExports(held, secrets)}`);
    const demo = held.filter((r) => r.parameters.cluster_name === "demo");
    assert.equal(demo.length, 1);
    assert.equal(demo[0].certname, "pup-demo-s1");
    const demoText = JSON.stringify(demo[0].parameters);
    assert.notEqual(secrets.demo.agentPassword, secrets.demo.serverPassword, "the server has a separate agent token");
    assert.ok(demoText.includes(secrets.demo.agentPassword), "the agent token is exported for agents");
    assert.ok(demoText.includes(secrets.demo.server.slice(3, 67)), "the exported token pins the CA (its hash)");
    const dump = await infra.dumpDatabase();
    for (const c of ["demo", "other"]) {
      assert.ok(!dump.includes(secrets[c].serverPassword), `PuppetDB's database must not hold ${c}'s server token anywhere`);
    }
  });

  it("manual mode (token_file, no sharing) joins with the given token and exports nothing", async () => {
    // Meanwhile an agent whose cluster has no server waits out its token_timeout (checked further on).
    lonely = puppetRun(node("pup-lone-a1"), "agent of a cluster without a server", { mayFail: true });
    record("pup-man-s1", await converge(node("pup-man-s1"), "manual server"));
    secrets.manual = await readSecrets(node("pup-man-s1"));
    // As the Pulumi program does: the verified token reaches the agent as a root 0600 file.
    const tokenFile = path.join(node("pup-man-a1").rootDir, "etc/rancher/k3s/cluster-token");
    await fs.mkdir(path.dirname(tokenFile), { recursive: true });
    await fs.writeFile(tokenFile, secrets.manual.agent + "\n", { mode: 0o600 });
    record("pup-man-a1", await converge(node("pup-man-a1"), "manual agent"));
    await waitForReady(node("pup-man-s1"), ["pup-man-s1", "pup-man-a1"]);
    for (const certname of ["pup-man-s1", "pup-man-a1"]) {
      assert.deepEqual(await infra.exportedResources(TYPE, { certname }), [], `${certname} exports nothing`);
    }
    const dump = await infra.dumpDatabase();
    assert.ok(!dump.includes(secrets.manual.serverPassword) && !dump.includes(secrets.manual.agentPassword),
      "no token of the manual cluster reaches PuppetDB");
  });

  it("an agent of a cluster whose servers never export fails after token_timeout, saying so, and starts nothing", async () => {
    const run = await lonely;
    assert.ok(run.code === 4 || run.code === 6, `the run must fail (exit ${run.code})`);
    assert.ok(run.ms >= 30_000, `it waited token_timeout (30 s) first: ${run.ms} ms`);
    assert.match(run.stdout + run.stderr, /no server of cluster 'lonely' exported its join information within 30 s/);
    const unit = await node("pup-lone-a1").exec("systemctl is-active k3s-agent; test -e /etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml && echo joined");
    assert.equal(unit.stdout.trim(), "inactive");
  });

  it("HA: the first server inits the cluster, two more join it with the shared server token, an agent joins", async () => {
    record("pup-ha-s1", await converge(node("pup-ha-s1"), "HA first server"));
    secrets.ha = await readSecrets(node("pup-ha-s1"));
    // Both at once, as a Puppet estate would run them: while one is an etcd learner the other's k3s is
    // refused ("too many learner members"), exits and is restarted by systemd within the same Puppet run.
    const [s2, s3] = await Promise.all([converge(node("pup-ha-s2"), "HA joining server"), converge(node("pup-ha-s3"), "HA joining server")]);
    record("pup-ha-s2", s2);
    record("pup-ha-s3", s3);
    const refused = (await Promise.all(["pup-ha-s2", "pup-ha-s3"].map((n) =>
      node(n as NodeName).exec("journalctl -u k3s --no-pager -o cat | grep -c 'too many learner members' || true"))))
      .map((r) => Number(r.stdout.trim()));
    say(`HA joins refused while the other server was a learner (s2, s3): ${refused.join(", ")}`);
    record("pup-ha-a1", await converge(node("pup-ha-a1"), "HA agent"));
    const names = ["pup-ha-a1", "pup-ha-s1", "pup-ha-s2", "pup-ha-s3"];
    const list = await waitForReady(node("pup-ha-s1"), names);
    say(`HA cluster nodes: ${JSON.stringify(list)}`);
    assert.deepEqual(list.map((n) => n.name), names);
    assert.deepEqual((await clusterNodes(node("pup-ha-s3"))).map((n) => n.name), names, "every server sees the same cluster");
    for (const s of ["pup-ha-s2", "pup-ha-s3"] as const) {
      const token = (await fs.readFile(path.join(node(s).rootDir, "var/lib/rancher/k3s/server/token"), "utf8")).trim();
      assert.ok(token === secrets.ha.server, `${s} holds the cluster's server token`);
    }
    const ha = await infra.exportedResources(TYPE, { parameters: { cluster_name: "ha" } });
    assert.ok(ha.some((r) => JSON.stringify(r.parameters).includes(secrets.ha.serverPassword)),
      "with share_server_token the server token is exported (for joining servers)");
  });

  it("PuppetDB's database holds exactly the agent tokens of sharing clusters, and a server token only where shared", async () => {
    const where = tablesHolding(await infra.dumpDatabase(), secrets);
    say(`tables of PuppetDB's database holding each secret: ${JSON.stringify(where)}`);
    const holds = Object.fromEntries(Object.entries(where).map(([c, w]) => [c, { server: w.server.length > 0, agent: w.agent.length > 0 }]));
    assert.deepEqual(holds, {
      other: { server: false, agent: true },
      demo: { server: false, agent: true },
      manual: { server: false, agent: false },
      ha: { server: true, agent: true },
    });
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
    // Agents hold at least the token they joined with, somewhere (else the scan proves nothing).
    assert.ok(filesContaining(node("pup-demo-a1"), [secrets.demo.agentPassword]).length > 0);
  });

  it("no token in Puppet's output, the nodes' journals, the server's logs or any process's arguments", async () => {
    const needles = Object.values(secrets).flatMap((s) => [s.serverPassword, s.agentPassword]);
    const leaks = (text: string) => needles.some((n) => text.includes(n));
    assert.ok(transcript.length >= Object.keys(NODES).length);
    for (const r of transcript) {
      assert.ok(!leaks(r.stdout + r.stderr), `run "${r.label}" on ${r.node} printed a token`);
    }
    for (const [name, n] of Object.entries(nodes)) {
      const journal = await n.exec("journalctl --no-pager -o cat", { timeoutMs: 60_000 });
      assert.ok(journal.stdout.length > 0);
      assert.ok(!leaks(journal.stdout), `${name}'s journal holds a token`);
    }
    for (const log of ["puppetserver/log/puppetserver.log", "puppetserver/console.log", "puppetdb/puppetdb.log"]) {
      assert.ok(!leaks(await fs.readFile(path.join(infra.stateDir, log), "utf8")), `${log} holds a token`);
    }
    const reports = path.join(infra.stateDir, "puppetserver/var/reports");
    for (const dir of await fs.readdir(reports)) {
      for (const f of await fs.readdir(path.join(reports, dir))) {
        assert.ok(!leaks(await fs.readFile(path.join(reports, dir, f), "utf8")), `stored report ${dir}/${f} holds a token`);
      }
    }
    say(`/proc/*/cmdline sampled ${sampler.samples} times, ${sampler.distinct} distinct command lines`);
    assert.ok(sampler.samples > 100);
    assert.equal(sampler.containing(needles).length, 0, "a process carried a token in its arguments");
  });
});
