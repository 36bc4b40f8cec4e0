// The local stack: this program's ordinary `pulumi up` on test nodes of this machine given as
// `k3s-cluster:hosts` — systemd-nspawn containers with real systemd and sshd on the bridge k3stest0,
// k3s played by the simulator from a local mirror. Needs root (containers, a bridge).
//
//   npm run local:up -- [--servers N] [--agents M]   boot the nodes (default 1 + 2), `pulumi up` the stack `local`
//   npm run local:down                               `pulumi destroy`, remove the stack, stop the nodes
//
// Afterwards `source .pulumi-local/env` makes plain `pulumi` commands (stack output, preview, up, config
// set, refresh, destroy) work on that stack from the project root.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { validateConfig } from "../components/config";
import { ensureToolchain } from "./pulumi-toolchain";
import { PulumiStack, PROJECT_DIR } from "../tests/engine/stack";
import { configureKnobs, hostKeyOf, type HostEntry } from "../tests/engine/hosts";
import { ensureBridge, startNodes, testSshKey, HOST_IP } from "../tests/rig/nodes";
import { killNode, nodePids } from "../tests/rig/cgroups";
import { binaryDigest, DEFAULT_RELEASE } from "../tests/k3s-sim/mirror";

const LOCAL_DIR = path.join(PROJECT_DIR, ".pulumi-local");
const STACK = "local";
const MIRROR_PORT = 18080;
// Servers from .220, agents from .230: a node keeps its address whatever the other counts become.
const SERVER_BASE = 220;
const AGENT_BASE = 230;
const MAX_AGENTS = 24;

function say(line: string): void {
  process.stderr.write(`local: ${line}\n`);
}

function fail(line: string): never {
  say(line);
  process.exit(1);
}

function parseCounts(argv: string[]): { servers: number; agents: number } {
  const counts = { servers: 1, agents: 2 };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(servers|agents)(?:=(.*))?$/.exec(argv[i]);
    if (!m) fail(`unknown argument ${JSON.stringify(argv[i])}: use --servers N and --agents M`);
    const raw = m[2] ?? argv[++i];
    const n = Number(raw);
    if (!Number.isInteger(n)) fail(`--${m[1]} must be a whole number (got ${JSON.stringify(raw)})`);
    counts[m[1] as "servers" | "agents"] = n;
  }
  if (counts.agents < 0 || counts.agents > MAX_AGENTS) fail(`--agents must be between 0 and ${MAX_AGENTS} on this machine (got ${counts.agents})`);
  return counts;
}

function entries(servers: number, agents: number): HostEntry[] {
  const out: HostEntry[] = [];
  for (let i = 0; i < servers; i++) out.push({ name: `local-s${i}`, address: `198.51.100.${SERVER_BASE + i}`, role: "server", sshUser: "ubuntu" });
  for (let i = 0; i < agents; i++) out.push({ name: `local-a${i}`, address: `198.51.100.${AGENT_BASE + i}`, role: "agent", sshUser: "ubuntu" });
  return out;
}

function stackFor(): PulumiStack {
  return new PulumiStack({ stack: STACK, workDir: LOCAL_DIR, projectDir: PROJECT_DIR });
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 1000 });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
    s.once("timeout", () => { s.destroy(); resolve(false); });
  });
}

/** The release mirror outlives this command (a later `pulumi up` may install from it): a detached process. */
async function ensureMirror(): Promise<string> {
  if (!(await portOpen(HOST_IP, MIRROR_PORT))) {
    say(`starting the k3s release mirror on http://${HOST_IP}:${MIRROR_PORT}`);
    const log = fs.openSync(path.join(LOCAL_DIR, "mirror.log"), "a");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(PROJECT_DIR, "tests/k3s-sim/mirror.ts"), HOST_IP, String(MIRROR_PORT)], {
      detached: true, stdio: ["ignore", log, log], cwd: PROJECT_DIR,
    });
    fs.writeFileSync(path.join(LOCAL_DIR, "mirror.pid"), `${child.pid}\n`);
    child.unref();
    for (let i = 0; i < 100 && !(await portOpen(HOST_IP, MIRROR_PORT)); i++) await new Promise((r) => setTimeout(r, 200));
    if (!(await portOpen(HOST_IP, MIRROR_PORT))) fail(`the mirror did not listen on ${HOST_IP}:${MIRROR_PORT} within 20 s (see ${LOCAL_DIR}/mirror.log)`);
  }
  return `http://${HOST_IP}:${MIRROR_PORT}/${encodeURIComponent(DEFAULT_RELEASE)}/k3s`;
}

function writeEnvFile(stack: PulumiStack): void {
  const env = stack.env();
  const lines = [
    "# source this file: plain `pulumi` commands then work on the local stack from the project root",
    `export PATH="${ensureToolchain()}:$PATH"`,
    ...["PULUMI_HOME", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_SKIP_UPDATE_CHECK",
      "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"].map((k) => `export ${k}=${JSON.stringify(env[k])}`),
  ];
  fs.writeFileSync(path.join(LOCAL_DIR, "env"), lines.join("\n") + "\n", { mode: 0o600 });
}

async function running(name: string): Promise<boolean> {
  return (await nodePids(name)).length > 0;
}

async function up(argv: string[]): Promise<void> {
  const { servers, agents } = parseCounts(argv);
  const wanted = entries(servers, agents);
  const key = testSshKey();
  // The same rules as `pulumi up` applies, before any node boots.
  const check = validateConfig({
    "k3s-cluster:clusterName": "local",
    "k3s-cluster:hosts": JSON.stringify(wanted),
    "k3s-cluster:sshPrivateKey": key.privateKey,
  });
  if (!check.ok) fail(`invalid counts:\n  - ${check.messages.join("\n  - ")}`);

  fs.mkdirSync(LOCAL_DIR, { recursive: true, mode: 0o700 });
  say("building (or reusing) the Pulumi toolchain");
  ensureToolchain();
  const stack = stackFor();
  await ensureBridge();
  const url = await ensureMirror();

  // Nodes of an earlier `local:up` keep running; only missing ones boot.
  const missing = [];
  for (const e of wanted) if (!(await running(e.name))) missing.push(e);
  const nodes = missing.length > 0 ? await startNodes(missing.map((e) => ({ name: e.name, ip: e.address }))) : [];
  const hosts: HostEntry[] = [];
  for (const e of wanted) {
    const node = nodes.find((n) => n.name === e.name);
    if (node) await configureKnobs(node, {});
    // The stack is told each node's host key: every SSH connection insists on it from the first one.
    hosts.push({ ...e, hostKey: await hostKeyOf({ name: e.name, rootDir: rootDirOf(e.name) }) });
  }

  await stack.init();
  await stack.setConfig({
    "k3s-cluster:clusterName": "local",
    "k3s-cluster:hosts": JSON.stringify(hosts),
    "k3s-cluster:k3sVersion": DEFAULT_RELEASE,
    "k3s-cluster:k3sBinaryUrl": url,
    "k3s-cluster:k3sBinarySha256": await binaryDigest(),
    "k3s-cluster:tokenTimeout": "300",
  }, { "k3s-cluster:sshPrivateKey": key.privateKey });
  writeEnvFile(stack);
  spawnSync("pulumi", ["stack", "select", STACK], { cwd: PROJECT_DIR, env: stack.env(), stdio: "ignore" });

  say(`pulumi up of ${servers} server(s) + ${agents} agent(s): ${hosts.map((h) => `${h.name} ${h.address}`).join(", ")}`);
  const r = spawnSync("pulumi", ["up", "--yes", "--stack", STACK, "--skip-preview"], { cwd: PROJECT_DIR, env: stack.env(), stdio: "inherit" });
  if (r.status !== 0) fail(`pulumi up failed (exit ${r.status}); the nodes keep running: fix and run npm run local:up again, or npm run local:down`);

  // Nodes the stack no longer declares were scaled in by that `up`: stop them now.
  for (const stale of await staleNodes(wanted)) {
    say(`stopping ${stale}: no longer part of the stack`);
    await stopByName(stale);
  }
  spawnSync("pulumi", ["stack", "output", "--stack", STACK], { cwd: PROJECT_DIR, env: stack.env(), stdio: "inherit" });
  process.stderr.write(`
The local cluster is up. From the project root:
  source .pulumi-local/env
  pulumi stack output kubeconfig --show-secrets > kubeconfig && kubectl --kubeconfig kubeconfig get nodes
  pulumi preview            # what a config change would do
  npm run local:up -- --agents 3   # change the counts
  npm run local:down        # destroy the stack and stop the nodes
`);
}

function rootDirOf(name: string): string {
  return path.join(process.env.K3S_TEST_STATE ?? "/var/lib/k3s-cluster-tests/nodes", name, "root");
}

async function staleNodes(wanted: HostEntry[]): Promise<string[]> {
  const stale: string[] = [];
  for (let i = 0; i < 7; i++) if (!wanted.some((w) => w.name === `local-s${i}`) && (await running(`local-s${i}`))) stale.push(`local-s${i}`);
  for (let i = 0; i < MAX_AGENTS; i++) if (!wanted.some((w) => w.name === `local-a${i}`) && (await running(`local-a${i}`))) stale.push(`local-a${i}`);
  return stale;
}

async function stopByName(name: string): Promise<void> {
  await killNode(name);
  spawnSync("umount", ["-l", rootDirOf(name)]);
  fs.rmSync(path.dirname(rootDirOf(name)), { recursive: true, force: true });
}

async function down(): Promise<void> {
  if (fs.existsSync(LOCAL_DIR)) {
    const stack = stackFor();
    const env = stack.env();
    const has = spawnSync("pulumi", ["stack", "ls", "--json"], { cwd: PROJECT_DIR, env, encoding: "utf8" });
    if (has.status === 0 && /"name":\s*"local"/.test(has.stdout)) {
      const r = spawnSync("pulumi", ["destroy", "--yes", "--stack", STACK, "--skip-preview"], { cwd: PROJECT_DIR, env, stdio: "inherit" });
      if (r.status !== 0) fail(`pulumi destroy failed (exit ${r.status}); nodes left running so it can be retried`);
      spawnSync("pulumi", ["stack", "rm", "--yes", STACK], { cwd: PROJECT_DIR, env, stdio: "inherit" });
    }
  }
  for (const name of await staleNodes([])) {
    say(`stopping ${name}`);
    await stopByName(name);
  }
  const pidFile = path.join(LOCAL_DIR, "mirror.pid");
  if (fs.existsSync(pidFile)) {
    try { process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGTERM"); } catch { /* already gone */ }
    fs.rmSync(pidFile);
  }
  say("local stack destroyed and its nodes stopped");
}

function requireRoot(): void {
  if (process.getuid && process.getuid() !== 0) {
    fail("the local stack boots systemd-nspawn containers on a bridge: run it as root (sudo npm run local:up)");
  }
}

if (require.main === module) {
  requireRoot();
  const [verb, ...rest] = process.argv.slice(2);
  const install = spawnSync("bash", [path.join(PROJECT_DIR, "tests/setup/install-debian-packages.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  if (install.status !== 0) fail("installing the Debian packages the test nodes need failed");
  (verb === "down" ? down() : verb === "up" ? up(rest) : Promise.reject(new Error("usage: local-stack.ts up|down"))).catch((err: Error) => fail(err.message));
}
