// One cluster under test on the real engine: test nodes given as `hosts`, the release mirror, a stack in
// a scratch project with its own file backend, and the evidence a test asserts on (engine transcript,
// command lines sampled on the host and every node, files, unit timestamps, the node list).
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { PulumiStack } from "./stack";
import { bootHosts, sshPrivateKey, type BootedHosts, type HostEntry, type HostsSpec } from "./hosts";
import { CommandLineSampler, filesHoldingSecrets, linesWithSecrets, type SecretFile } from "./evidence";
import { kubectlPath } from "./kubectl";
import { serveMirror, DEFAULT_RELEASE, type Mirror } from "../k3s-sim/mirror";
import { ensureBridge, HOST_IP, type TestNode } from "../rig/nodes";

// Start-up shaped like real k3s but shorter, so the suite fits CI: token early, API later, node Ready after.
export const FAST_KNOBS = { tokenDelay: 1, apiReadyDelay: 4, nodeReadyDelay: 1, etcdJoinDelay: 2, agentJoinDelay: 1 };

export interface ClusterSpec extends HostsSpec {
  /** Further `k3s-cluster:*` settings (plain). */
  config?: Record<string, string>;
  /** Further secret settings. */
  secrets?: Record<string, string>;
  tokenTimeout?: number;
  /** Declare only this many servers and agents at first (the other nodes boot and wait, for scale-out). */
  initial?: { servers: number; agents: number };
}

export interface UnitTimes {
  unit: string;
  /** Unix ms when the unit's main process started and when it turned active. */
  startMs?: number;
  activeMs?: number;
}

export class ClusterUnderTest {
  readonly stack: PulumiStack;
  readonly sampler = new CommandLineSampler();
  private booted?: BootedHosts;
  private mirror?: Mirror;
  /** The node the cluster is asked about: the first server declared (another one after a replacement). */
  private firstServer: string;

  constructor(readonly spec: ClusterSpec) {
    this.firstServer = `${spec.prefix}-s0`;
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `k3s-engine-${spec.prefix}-`));
    this.stack = new PulumiStack({ stack: spec.prefix, workDir });
  }

  get nodes(): Map<string, TestNode> {
    if (!this.booted) throw new Error("nodes are not booted");
    return this.booted.nodes;
  }

  node(name: string): TestNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** What the stack declares at first: `spec.initial`, or every booted node. */
  get initial(): { servers: number; agents: number } {
    return this.spec.initial ?? { servers: this.spec.servers, agents: this.spec.agents };
  }

  /** prepare(), then the first `pulumi up`, then waits for every node declared at first to be listed Ready. */
  async deploy(): Promise<void> {
    await this.prepare();
    await this.stack.run(["up", "--yes", "--skip-preview"]);
    await this.waitForReady(this.initial.servers + this.initial.agents);
  }

  /** Boots the nodes, starts the mirror, creates the stack and sets its config. */
  async prepare(): Promise<void> {
    this.sampler.start();
    await ensureBridge();
    this.mirror = await serveMirror(HOST_IP);
    this.booted = await bootHosts(this.spec);
    await this.stack.init();
    const initial = this.initial;
    await this.stack.setConfig({
      "k3s-cluster:clusterName": this.spec.prefix,
      "k3s-cluster:hosts": JSON.stringify(this.hostsFor(initial.servers, initial.agents)),
      "k3s-cluster:k3sVersion": DEFAULT_RELEASE,
      "k3s-cluster:k3sBinaryUrl": this.mirror.url(),
      "k3s-cluster:k3sBinarySha256": this.mirror.sha256,
      "k3s-cluster:tokenTimeout": String(this.spec.tokenTimeout ?? 120),
      "k3s-cluster:pollInterval": "1",
      ...this.spec.config,
    }, { "k3s-cluster:sshPrivateKey": sshPrivateKey(), ...this.spec.secrets });
  }

  /** The hosts list declaring the first `servers` servers and `agents` agents of the booted nodes. */
  hostsFor(servers: number, agents: number): HostEntry[] {
    if (!this.booted) throw new Error("nodes are not booted");
    const all = this.booted.hosts;
    return [...all.filter((h) => h.role === "server").slice(0, servers), ...all.filter((h) => h.role === "agent").slice(0, agents)];
  }

  /** The settings that make the stack install `release` from the mirror. */
  releaseConfig(release: string): Record<string, string> {
    if (!this.mirror) throw new Error("the mirror is not running");
    return {
      "k3s-cluster:k3sVersion": release,
      "k3s-cluster:k3sBinaryUrl": this.mirror.url(release),
      "k3s-cluster:k3sBinarySha256": this.mirror.digest(release),
    };
  }

  /** Declares another subset of the booted nodes (scale out or in) for the next `pulumi up`. */
  async declare(servers: number, agents: number): Promise<void> {
    await this.stack.setConfig({ "k3s-cluster:hosts": JSON.stringify(this.hostsFor(servers, agents)) });
  }

  /** Declares exactly these booted nodes, by name (a replacement: new names in, old ones out). */
  async declareNames(names: string[]): Promise<void> {
    if (!this.booted) throw new Error("nodes are not booted");
    const hosts = names.map((n) => {
      const h = this.booted!.hosts.find((x) => x.name === n);
      if (!h) throw new Error(`no booted node ${n}`);
      return h;
    });
    await this.stack.setConfig({ "k3s-cluster:hosts": JSON.stringify(hosts) });
    this.firstServer = hosts.find((h) => h.role === "server")?.name ?? this.firstServer;
  }

  /** `pulumi preview --json`: each resource's planned operation. */
  async plan(): Promise<{ op: string; urn: string }[]> {
    const r = await this.stack.run(["preview", "--json"]);
    const steps = (JSON.parse(r.stdout) as { steps?: { op: string; urn: string }[] }).steps ?? [];
    return steps.map((st) => ({ op: st.op, urn: st.urn }));
  }

  /** `pulumi stack output` with secrets, and the tokens and password parts the scans look for. */
  async secrets(): Promise<{ outputs: Record<string, unknown>; needles: string[] }> {
    const outputs = await this.stack.outputs(true);
    const needles: string[] = [];
    for (const t of [outputs.token, outputs.agentToken, this.spec.secrets?.["k3s-cluster:token"]]) {
      if (typeof t !== "string" || !t) continue;
      needles.push(t);
      const pw = t.split(":").pop();
      if (pw && pw.length >= 16) needles.push(pw);
    }
    return { outputs, needles };
  }

  /** The cluster's own node list, from the first declared server. */
  async nodeList(): Promise<{ name: string; status: string; roles: string; version: string }[]> {
    const first = this.node(this.firstServer);
    const r = await first.exec("k3s kubectl get nodes 2>&1 | tail -n +2 || true", { timeoutMs: 20_000 });
    return r.stdout.trim().split("\n").filter((l) => l && !/^Error|refused|No resources/.test(l)).map((l) => {
      const [name, status, roles, , version] = l.trim().split(/\s+/);
      return { name, status, roles, version };
    });
  }

  /** Waits up to `seconds` for the list to hold `count` Ready nodes (kubelet's first status lags its unit). */
  async waitForReady(count: number, seconds = 30): Promise<Awaited<ReturnType<ClusterUnderTest["nodeList"]>>> {
    process.stderr.write(`engine: waiting up to ${seconds} s for ${count} nodes to be listed Ready\n`);
    for (const deadline = Date.now() + seconds * 1000; ;) {
      const list = await this.nodeList();
      if (list.filter((n) => n.status === "Ready").length >= count || Date.now() > deadline) return list;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async unitTimes(name: string): Promise<UnitTimes> {
    const node = this.node(name);
    for (const unit of ["k3s", "k3s-agent"]) {
      const r = await node.exec(`systemctl show ${unit} -p ExecMainStartTimestamp -p ActiveEnterTimestamp --timestamp=unix 2>/dev/null || true`);
      const start = /ExecMainStartTimestamp=@(\d+(?:\.\d+)?)/.exec(r.stdout);
      const active = /ActiveEnterTimestamp=@(\d+(?:\.\d+)?)/.exec(r.stdout);
      if (start || active) {
        return { unit, startMs: start ? Number(start[1]) * 1000 : undefined, activeMs: active ? Number(active[1]) * 1000 : undefined };
      }
    }
    return { unit: "none" };
  }

  /** Runs `kubectl get nodes` with the kubeconfig output, as a user would. */
  async kubectlGetNodes(): Promise<{ ok: boolean; text: string }> {
    const r = await this.stack.run(["stack", "output", "kubeconfig", "--show-secrets"]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-engine-kubeconfig-"));
    const file = path.join(dir, "kubeconfig");
    fs.writeFileSync(file, r.stdout, { mode: 0o600 });
    const k = spawnSync(kubectlPath(), ["--kubeconfig", file, "get", "nodes"], { encoding: "utf8", timeout: 30_000 });
    fs.rmSync(dir, { recursive: true, force: true });
    return { ok: k.status === 0, text: `${k.stdout}${k.stderr}` };
  }

  /** Every secret finding: engine output, command lines, node journals, and files not root 0600. */
  async leaks(needles: string[]): Promise<{ transcript: string[]; cmdlines: string[]; journals: string[]; files: (SecretFile & { node: string })[]; samples: number }> {
    const journals: string[] = [];
    const files: (SecretFile & { node: string })[] = [];
    for (const [name, node] of this.nodes) {
      const j = await node.exec("journalctl --no-pager -q -o cat 2>/dev/null || true", { timeoutMs: 30_000 });
      journals.push(...linesWithSecrets(j.stdout, needles).map((l) => `${name}: ${l}`));
      files.push(...filesHoldingSecrets(node.rootDir, needles).map((f) => ({ ...f, node: name })));
    }
    const cmd = this.sampler.findings(needles);
    return {
      transcript: linesWithSecrets(this.stack.transcript.join("\n"), needles),
      cmdlines: cmd.leaks,
      journals,
      files,
      samples: this.sampler.samples,
    };
  }

  async teardown(): Promise<void> {
    this.sampler.stop();
    this.mirror?.close();
    await this.booted?.stop();
  }
}

/** JSON paths of the state where any needle appears in clear text (outside a `ciphertext`). */
export function plaintextPaths(state: string, needles: string[]): string[] {
  const found: string[] = [];
  const walk = (v: unknown, at: string): void => {
    if (typeof v === "string") {
      if (needles.some((n) => v.includes(n))) found.push(at);
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
  };
  const resources = (JSON.parse(state) as { deployment: { resources?: { urn: string }[] } }).deployment.resources ?? [];
  for (const r of resources) walk(r, r.urn.split("::").pop() ?? r.urn);
  return found;
}

/** Resource URNs in the stack's state. */
export async function stateUrns(stack: PulumiStack): Promise<string[]> {
  const state = JSON.parse(await stack.exportState()) as { deployment: { resources?: { urn: string }[] } };
  return (state.deployment.resources ?? []).map((r) => r.urn);
}

/** Polls every server's /ping every 200 ms; the longest stretch (ms) in which none answered. */
export function apiSampler(addresses: string[]) {
  let last = Date.now();
  let longest = 0;
  let samples = 0;
  const ping = (ip: string) => new Promise<boolean>((resolve) => {
    const req = https.get({ host: ip, port: 6443, path: "/ping", rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => { req.destroy(); resolve(false); });
  });
  const timer = setInterval(async () => {
    samples++;
    const answered = (await Promise.all(addresses.map(ping))).some(Boolean);
    const now = Date.now();
    if (answered) last = now;
    longest = Math.max(longest, now - last);
  }, 200);
  return { stop: () => { clearInterval(timer); return { longestGapMs: longest, samples }; } };
}

