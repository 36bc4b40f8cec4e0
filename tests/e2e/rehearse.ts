// One rehearsal of `pulumi up`: the program runs under Pulumi mocks and RehearsalEngine carries out
// what it registers on systemd-nspawn test nodes standing in for EC2 instances; k3s is the simulator,
// installed by the Puppet module from the URL the stack config gives. Prints one JSON line (the
// RehearsalResult) as its last line. One rehearsal per process: Pulumi allows one mocks setup each.
//
//   tsx tests/e2e/rehearse.ts < options.json   (RehearsalOptions as JSON on stdin)
import * as pulumi from "@pulumi/pulumi";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { RehearsalEngine, plaintextPaths, type InstanceRequest } from "./engine";
import { CommandLineSampler, filesHoldingSecrets, linesWithSecrets, type SecretFile } from "./evidence";
import { ensureBridge, startNodes, testSshKey, HOST_IP, type TestNode } from "../rig/nodes";
import { buildSimulator } from "../k3s-sim/build";
import { kubectlPath } from "./kubectl";

const PROJECT_DIR = path.resolve(__dirname, "../..");

export interface SimKnobs {
  tokenDelay?: number;
  apiReadyDelay?: number;
  nodeReadyDelay?: number;
  etcdJoinDelay?: number;
  agentJoinDelay?: number;
  faults?: Record<string, unknown>;
}

export interface RehearsalOptions {
  clusterName: string;
  servers: number;
  agents: number;
  /** Last octet of the first node address; nodes take consecutive addresses in 198.51.100.0/24. */
  firstOctet: number;
  knobs: SimKnobs;
  /** Knobs for particular servers (by index), merged over `knobs`. */
  serverKnobs?: Record<number, SimKnobs>;
  tokenTimeout: number;
  pollInterval: number;
  extraConfig?: Record<string, string>;
}

export interface NodeJoin {
  name: string;
  roles: string;
  status: string;
}

export interface RehearsalResult {
  ok: boolean;
  error?: string;
  wallMs: number;
  peakRssMb: number;
  events: { type: string; name: string; startMs: number; endMs: number; ok: boolean; error?: string }[];
  /** The unit start times on each node, ms since the rehearsal began (from journald). */
  unitStarts: Record<string, { unit: string; activeMs?: number; startMs?: number }>;
  outputs: { names: string[]; serverUrl?: string; verification?: unknown; kubeconfigWorks?: boolean };
  nodeList: NodeJoin[];
  kubectlGetNodes?: string;
  secrecy: {
    cmdlineSamples: number;
    distinctCmdlines: number;
    cmdlineLeaks: string[];
    logLeaks: string[];
    tokenFiles: (SecretFile & { node: string })[];
    plaintextInState: string[];
  };
}

const engineLog: string[] = [];
function log(resource: string, line: string): void {
  engineLog.push(`[${resource}] ${line}`);
  process.stderr.write(`[${resource}] ${line}\n`);
}

/** Serves the simulator binary to the nodes over HTTP, as a release mirror would. */
async function serveBinary(file: string): Promise<{ url: string; sha256: string; close(): void }> {
  const body = fs.readFileSync(file);
  const sha256 = crypto.createHash("sha256").update(body).digest("hex");
  const server = http.createServer((req, res) => {
    if (req.url !== "/k3s") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST_IP, resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://${HOST_IP}:${port}/k3s`, sha256, close: () => server.close() };
}

function invoke(token: string): Record<string, unknown> {
  switch (token) {
    case "aws:ec2/getAmi:getAmi":
      return { id: "ami-0rehearsal", architecture: "x86_64", name: "ubuntu-noble-24.04-amd64-server-rehearsal" };
    case "aws:index/getAvailabilityZones:getAvailabilityZones":
      return { names: ["rh-1a", "rh-1b", "rh-1c"], zoneIds: ["rh1-az1", "rh1-az2", "rh1-az3"], state: "available" };
    case "aws:ec2/getVpc:getVpc":
      return { id: "vpc-rehearsal", cidrBlock: "198.51.100.0/24" };
    case "aws:ec2/getSubnets:getSubnets":
      return { ids: ["subnet-a", "subnet-b"] };
    case "aws:index/getRegion:getRegion":
      return { name: "rh-1", region: "rh-1" };
    default:
      return {};
  }
}

function awaitOutput<T>(value: unknown): Promise<T | undefined> {
  if (!pulumi.Output.isInstance(value)) return Promise.resolve(value as T);
  return new Promise((resolve) => (value as pulumi.Output<T>).apply((v) => resolve(v)));
}

async function unitTimes(node: TestNode, t0Unix: number): Promise<{ unit: string; activeMs?: number; startMs?: number }> {
  // The k3s units' own record of when they started and became active.
  for (const unit of ["k3s", "k3s-agent"]) {
    const r = await node.exec(
      `systemctl show ${unit} -p ActiveEnterTimestampMonotonic -p ExecMainStartTimestamp -p ActiveEnterTimestamp --timestamp=unix 2>/dev/null; systemctl is-enabled ${unit} 2>/dev/null || true`,
    );
    const start = /ExecMainStartTimestamp=@(\d+(?:\.\d+)?)/.exec(r.stdout);
    const active = /ActiveEnterTimestamp=@(\d+(?:\.\d+)?)/.exec(r.stdout);
    if (start || active) {
      return {
        unit,
        startMs: start ? Math.round(Number(start[1]) * 1000 - t0Unix) : undefined,
        activeMs: active ? Math.round(Number(active[1]) * 1000 - t0Unix) : undefined,
      };
    }
  }
  return { unit: "none" };
}

export async function rehearse(options: RehearsalOptions): Promise<RehearsalResult> {
  const t0Unix = Date.now();
  const nodes = new Map<string, TestNode>();
  const sampler = new CommandLineSampler();
  const simulator = await buildSimulator();
  const key = testSshKey();
  let peakRss = process.memoryUsage().rss;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
  rssTimer.unref();

  // Boot the bridge's first node early so the host address exists before the binary is served.
  const serverCount = options.servers;
  const nodeNameOf = (instanceName: string) => {
    const m = /-(server|agent)-(\d+)$/.exec(instanceName);
    if (!m) throw new Error(`unexpected instance name ${instanceName}`);
    return { role: m[1], index: Number(m[2]), node: `e2e-${m[1][0]}${m[2]}` };
  };
  const ipOf = (role: string, index: number) =>
    `198.51.100.${options.firstOctet + (role === "server" ? index : serverCount + index)}`;

  let mirror: { url: string; sha256: string; close(): void } | undefined;
  const startInstance = async ({ name }: InstanceRequest) => {
    const { role, index, node: nodeName } = nodeNameOf(name);
    const ip = ipOf(role, index);
    log(name, `booting test node ${nodeName} at ${ip} (stands in for the EC2 instance)`);
    const [node] = await startNodes([{ name: nodeName, ip }]);
    nodes.set(nodeName, node);
    const knobs = { ...options.knobs, ...(role === "server" ? options.serverKnobs?.[index] : {}) };
    await node.exec(`cat > /etc/k3s-sim.json`, { input: JSON.stringify(knobs) });
    return { ip, id: `i-${nodeName}` };
  };

  const engine = new RehearsalEngine({ projectDir: PROJECT_DIR, startInstance, invoke, log });
  const result: RehearsalResult = {
    ok: false,
    wallMs: 0,
    peakRssMb: 0,
    events: engine.events,
    unitStarts: {},
    outputs: { names: [] },
    nodeList: [],
    secrecy: { cmdlineSamples: 0, distinctCmdlines: 0, cmdlineLeaks: [], logLeaks: [], tokenFiles: [], plaintextInState: [] },
  };
  const secrets: string[] = [];
  try {
    // The binary mirror listens on the bridge address, which exists once the rig has made the bridge.
    await ensureBridge();
    mirror = await serveBinary(simulator);
    const config: Record<string, string> = {
      "k3s-cluster:clusterName": options.clusterName,
      "k3s-cluster:servers": String(options.servers),
      "k3s-cluster:agents": String(options.agents),
      "k3s-cluster:adminCidrs": JSON.stringify(["198.51.100.0/24"]),
      "k3s-cluster:sshUser": "ubuntu",
      "k3s-cluster:sshPublicKey": key.publicKey,
      "k3s-cluster:sshPrivateKey": key.privateKey,
      "k3s-cluster:k3sVersion": "v1.34.3+k3s1",
      "k3s-cluster:k3sBinaryUrl": mirror.url,
      "k3s-cluster:k3sBinarySha256": mirror.sha256,
      "k3s-cluster:tokenTimeout": String(options.tokenTimeout),
      "k3s-cluster:pollInterval": String(options.pollInterval),
      ...options.extraConfig,
    };
    pulumi.runtime.setAllConfig(config, ["k3s-cluster:sshPrivateKey", "k3s-cluster:token"]);
    pulumi.runtime.setMocks(engine, "k3s-cluster", "rehearsal", false);
    engine.watchRegistrations();
    sampler.start();

    const failures: Error[] = [];
    const onFailure = (err: unknown) => failures.push(err as Error);
    process.on("unhandledRejection", onFailure);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const program = require(path.join(PROJECT_DIR, "index.ts")) as Record<string, unknown>;
    const names = Object.keys(program);
    result.outputs.names = names;
    const values: Record<string, unknown> = {};
    // A failed resource leaves the outputs that depend on it unresolved forever, as `pulumi up` stops
    // there too: judge the run as soon as one fails.
    let poll: NodeJS.Timeout | undefined;
    const firstFailure = new Promise<void>((resolve) => {
      poll = setInterval(() => engine.events.some((e) => e.endMs > 0 && !e.ok) && resolve(), 250);
    });
    const evaluated = Promise.all(
      names.map(async (name) => {
        values[name] = await Promise.race([
          awaitOutput(program[name]),
          new Promise((resolve) => setTimeout(resolve, (options.tokenTimeout + 300) * 1000).unref()),
        ]);
      }),
    );
    await Promise.race([evaluated, firstFailure]);
    clearInterval(poll);
    // Let registrations that are still running (or were refused) settle before judging.
    await waitForQuiet(engine, 2000);
    process.off("unhandledRejection", onFailure);
    const token = values.token as string | undefined;
    const agentToken = values.agentToken as string | undefined;
    for (const t of [token, agentToken]) {
      if (t) {
        secrets.push(t);
        const pw = t.split(":").pop();
        if (pw && pw.length >= 16) secrets.push(pw);
      }
    }
    result.outputs.serverUrl = values.serverUrl as string | undefined;
    result.outputs.verification = values.verification;
    const failed = engine.events.find((e) => !e.ok);
    if (failed || failures.length > 0 || !token) {
      result.error = failed?.error ?? failures[0]?.message ?? "the program exported no token";
    }

    // Joins as the cluster sees them, from the first server. A joined node turns Ready a few seconds
    // after its unit is active (kubelet's first status), so give the list that long to settle.
    const first = nodes.get("e2e-s0");
    if (first && !result.error) {
      const expected = options.servers + options.agents;
      process.stderr.write(`rehearsal: waiting up to 30 s for ${expected} nodes to be listed Ready\n`);
      for (const deadline = Date.now() + 30_000; ; ) {
        const r = await first.exec("k3s kubectl get nodes 2>&1 | tail -n +2 || true", { timeoutMs: 20_000 });
        result.nodeList = r.stdout
          .trim()
          .split("\n")
          .filter((l) => l && !/^Error|refused/.test(l))
          .map((l) => {
            const [name, status, roles] = l.trim().split(/\s+/);
            return { name, status, roles };
          });
        const ready = result.nodeList.filter((n) => n.status === "Ready").length;
        if (ready >= expected || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    const kubeconfig = values.kubeconfig as string | undefined;
    if (kubeconfig) {
      const file = path.join(fs.mkdtempSync("/tmp/k3s-e2e-kubeconfig-"), "kubeconfig");
      fs.writeFileSync(file, kubeconfig, { mode: 0o600 });
      const r = spawnSync(kubectlPath(), ["--kubeconfig", file, "get", "nodes"], { encoding: "utf8", timeout: 30_000 });
      result.kubectlGetNodes = (r.stdout || "") + (r.stderr || "");
      result.outputs.kubeconfigWorks = r.status === 0;
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
    result.ok = !result.error;
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    sampler.stop();
    clearInterval(rssTimer);
    mirror?.close();
  }

  // Evidence from every node while it is still up.
  for (const [name, node] of nodes) {
    result.unitStarts[name] = await unitTimes(node, t0Unix);
    if (secrets.length > 0) {
      const journal = await node.exec("journalctl --no-pager -q -o cat 2>/dev/null || true", { timeoutMs: 30_000 });
      result.secrecy.logLeaks.push(...linesWithSecrets(journal.stdout, secrets).map((l) => `${name}: ${l}`));
      result.secrecy.tokenFiles.push(...filesHoldingSecrets(node.rootDir, secrets).map((f) => ({ ...f, node: name })));
    }
  }
  if (secrets.length > 0) {
    const cmd = sampler.findings(secrets);
    result.secrecy.cmdlineSamples = sampler.samples;
    result.secrecy.distinctCmdlines = cmd.distinct;
    result.secrecy.cmdlineLeaks = cmd.leaks;
    for (const r of engine.resources) {
      for (const s of secrets) {
        result.secrecy.plaintextInState.push(...plaintextPaths(r.state, s).map((p) => `${r.name}.${p}`));
      }
    }
    result.secrecy.logLeaks.push(...linesWithSecrets(engineLogText(), secrets).map((l) => `engine: ${l}`));
  }
  await Promise.all([...nodes.values()].map((n) => n.stop()));
  result.wallMs = Date.now() - t0Unix;
  result.peakRssMb = Math.round(peakRss / 1024 / 1024);
  return result;
}

function engineLogText(): string {
  return engineLog.join("\n");
}

async function waitForQuiet(engine: RehearsalEngine, quietMs: number): Promise<void> {
  let count = -1;
  while (count !== engine.events.length || engine.events.some((e) => e.endMs === 0)) {
    count = engine.events.length;
    await new Promise((resolve) => setTimeout(resolve, quietMs));
  }
}

if (require.main === module) {
  const options = JSON.parse(require("node:fs").readFileSync(0, "utf8") || "{}") as RehearsalOptions;
  rehearse(options).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + "\n");
      process.exit(0);
    },
    (err) => {
      process.stdout.write(JSON.stringify({ ok: false, error: String(err?.message ?? err) }) + "\n");
      process.exit(1);
    },
  );
}
