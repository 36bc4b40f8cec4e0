// Test nodes standing in for EC2 instances: systemd-nspawn containers booting real systemd, with a real
// OpenSSH server on their own address on the test bridge, sudo, puppet-agent and the host's `node`.
// Each boots from a copy-on-write overlay on the shared root filesystem, so a node starts in a second or
// two and its files stay inspectable from the host (`rootDir`) until it is stopped.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promises as fs, openSync, closeSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { BRIDGE, HOST_IP, PREFIX_LENGTH, ensureBridge } from "./bridge";
import { enterCgroupScript, killNode, nodePids } from "./cgroups";
import { ensureRootfs } from "./rootfs";
import { run, sleep, type RunResult } from "./sh";
import { testSshKey } from "./ssh-key";

export { BRIDGE, HOST_IP, ensureBridge } from "./bridge";
export { ensureRootfs } from "./rootfs";
export { testSshKey, type TestSshKey } from "./ssh-key";

export interface NodeSpec { name: string; ip: string; hosts?: Record<string, string>; }
export type ExecResult = RunResult;
export interface TestNode {
  readonly name: string;
  readonly ip: string;
  /** Host path of the node's merged root filesystem. */
  readonly rootDir: string;
  /** `bash -c command` as root inside the node; never throws for a non-zero exit. */
  exec(command: string, opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Complete stop: no process of the node is left, its filesystem is unmounted and removed. */
  stop(): Promise<void>;
}

const STATE_DIR = process.env.K3S_TEST_STATE ?? "/var/lib/k3s-cluster-tests/nodes";
const BOOT_TIMEOUT_MS = 90_000;
const NODE_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function checkSpec(spec: NodeSpec): void {
  if (!NODE_NAME.test(spec.name)) throw new Error(`rig: node name "${spec.name}" must match ${NODE_NAME}`);
  if (!/^198\.51\.100\.(\d+)$/.test(spec.ip) || spec.ip === HOST_IP) {
    throw new Error(`rig: node ip "${spec.ip}" must be in 198.51.100.0/24 and not the host's ${HOST_IP}`);
  }
}

async function writeFile(root: string, file: string, content: string, mode: number, uid = 0): Promise<void> {
  const full = path.join(root, file);
  await fs.mkdir(path.dirname(full), { recursive: true });
  await fs.writeFile(full, content, { mode });
  await fs.chmod(full, mode);
  await fs.chown(full, uid, uid);
}

async function uidOf(root: string, user: string): Promise<number> {
  const passwd = await fs.readFile(path.join(root, "etc/passwd"), "utf8");
  const line = passwd.split("\n").find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`rig: user ${user} missing from the node image`);
  return Number(line.split(":")[2]);
}

/** The node's identity and network, written into its overlay before it boots. */
async function personalize(root: string, spec: NodeSpec, publicKey: string): Promise<void> {
  const hosts = [`127.0.0.1 localhost`, `${spec.ip} ${spec.name}`, `::1 localhost ip6-localhost ip6-loopback`];
  for (const [name, ip] of Object.entries(spec.hosts ?? {})) hosts.push(`${ip} ${name}`);
  await writeFile(root, "etc/hostname", `${spec.name}\n`, 0o644);
  await writeFile(root, "etc/hosts", hosts.join("\n") + "\n", 0o644);
  await writeFile(root, "etc/machine-id", randomBytes(16).toString("hex") + "\n", 0o444);
  await writeFile(root, "etc/systemd/network/10-host0.network",
    `[Match]\nName=host0\n\n[Network]\nAddress=${spec.ip}/${PREFIX_LENGTH}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n`, 0o644);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `root@${spec.name}`, "-f",
    path.join(root, "etc/ssh/ssh_host_ed25519_key")]);
  await writeFile(root, "root/.ssh/authorized_keys", publicKey + "\n", 0o600);
  await fs.chmod(path.join(root, "root/.ssh"), 0o700);
  const ubuntu = await uidOf(root, "ubuntu");
  await writeFile(root, "home/ubuntu/.ssh/authorized_keys", publicKey + "\n", 0o600, ubuntu);
  await fs.chmod(path.join(root, "home/ubuntu/.ssh"), 0o700);
  await fs.chown(path.join(root, "home/ubuntu/.ssh"), ubuntu, ubuntu);
}

async function unmount(dir: string): Promise<void> {
  await run("umount", ["-l", dir], { allowFail: true });
}

/** Removes what a previous run may have left under this node's name. */
async function clearStale(name: string, stateDir: string): Promise<void> {
  await killNode(name);
  await unmount(path.join(stateDir, "root"));
  await fs.rm(stateDir, { recursive: true, force: true });
}

/** PID (host view) of the node's init: a process in its cgroup that is PID 1 in its own namespace. */
async function findInit(name: string): Promise<number | undefined> {
  for (const pid of await nodePids(name)) {
    const status = await fs.readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1].trim().split(/\s+/);
    if (nspid && nspid.length >= 2 && nspid[nspid.length - 1] === "1") return pid;
  }
  return undefined;
}

function sshBanner(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: ip, port: 22, timeout: 2_000 });
    sock.once("data", (d) => { sock.destroy(); resolve(d.toString().startsWith("SSH-")); });
    sock.once("error", () => resolve(false));
    sock.once("timeout", () => { sock.destroy(); resolve(false); });
  });
}

class NspawnNode implements TestNode {
  constructor(
    readonly name: string,
    readonly ip: string,
    readonly rootDir: string,
    private readonly stateDir: string,
    private readonly initPid: () => Promise<number>,
  ) {}

  async exec(command: string, opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const pid = await this.initPid();
    const timeoutMs = opts.timeoutMs ?? 120_000;
    // The deadline is enforced inside the node: `timeout` signals the command's whole process group, which
    // killing nsenter on the host would not reach.
    return run("nsenter", ["-t", String(pid), "-a", "-r", "-w", "--", "env", "-i", `PATH=${NODE_PATH}`,
      "HOME=/root", "LANG=C.UTF-8", "timeout", "--kill-after=2", `${timeoutMs / 1000}s`, "bash", "-c", command],
      { input: opts.input, timeoutMs: timeoutMs + 10_000, allowFail: true });
  }

  async stop(): Promise<void> {
    await killNode(this.name);
    await unmount(this.rootDir);
    await fs.rm(this.stateDir, { recursive: true, force: true });
  }
}

async function startNode(spec: NodeSpec, lower: string, publicKey: string): Promise<TestNode> {
  checkSpec(spec);
  const stateDir = path.join(STATE_DIR, spec.name);
  await clearStale(spec.name, stateDir);
  const [upper, work, root] = ["upper", "work", "root"].map((d) => path.join(stateDir, d));
  for (const d of [upper, work, root]) await fs.mkdir(d, { recursive: true });
  await run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${upper},workdir=${work}`, root]);
  await personalize(root, spec, publicKey);

  const nspawn = ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
    `--directory=${root}`, `--machine=${spec.name}`, `--hostname=${spec.name}`,
    `--network-bridge=${BRIDGE}`, "--bind-ro=/usr/bin/node", "--console=passive", "--resolv-conf=off",
    "--timezone=off", "--link-journal=no"];
  const log = openSync(path.join(stateDir, "console.log"), "a");
  const launcher = spawn("bash", ["-c", `${enterCgroupScript(spec.name)}\nexec ${nspawn.join(" ")}`], {
    stdio: ["ignore", log, log], detached: true,
  });
  closeSync(log);
  launcher.unref();
  let exited: string | undefined;
  launcher.on("exit", (code, signal) => (exited = `systemd-nspawn exited (${signal ?? code})`));

  let init: number | undefined;
  const initPid = async () => {
    if (init && (await fs.stat(`/proc/${init}`).then(() => true, () => false))) return init;
    init = await findInit(spec.name);
    if (!init) throw new Error(`rig: node ${spec.name} is not running`);
    return init;
  };
  const node = new NspawnNode(spec.name, spec.ip, root, stateDir, initPid);

  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  let state = "no init yet";
  for (;;) {
    if (exited) break;
    if (await findInit(spec.name)) {
      // During boot the init process can be replaced between finding it and entering it: try again.
      const r = await node.exec("systemctl is-system-running", { timeoutMs: 10_000 }).catch((err: Error) => ({ stdout: "", stderr: err.message }));
      state = r.stdout.trim() || r.stderr.trim();
      if ((state === "running" || state === "degraded") && (await sshBanner(spec.ip))) break;
    }
    if (Date.now() > deadline) break;
    await sleep(200);
  }
  if (exited || Date.now() > deadline) {
    const console = await fs.readFile(path.join(stateDir, "console.log"), "utf8").catch(() => "");
    await node.stop().catch(() => undefined);
    throw new Error(`rig: node ${spec.name} (${spec.ip}) did not boot to a running systemd with sshd on :22 ` +
      `within ${BOOT_TIMEOUT_MS / 1000} s (${exited ?? `systemd state: ${state}`}).\n${console.slice(-3000)}`);
  }
  if (state === "degraded") {
    const failed = await node.exec("systemctl --failed --no-legend --plain");
    process.stderr.write(`rig: node ${spec.name} booted degraded: ${failed.stdout.trim()}\n`);
  }
  return node;
}

/** Boots the nodes in parallel; resolves when each runs systemd and its sshd answers on :22. */
export async function startNodes(specs: NodeSpec[]): Promise<TestNode[]> {
  const names = new Set(specs.map((s) => s.name));
  if (names.size !== specs.length) throw new Error("rig: node names must be unique");
  process.stderr.write(`rig: booting ${specs.map((s) => `${s.name} (${s.ip})`).join(", ")}; ` +
    `waiting up to ${BOOT_TIMEOUT_MS / 1000} s for systemd and sshd\n`);
  const [lower] = await Promise.all([ensureRootfs(), ensureBridge()]);
  const { publicKey } = testSshKey();
  const started = await Promise.allSettled(specs.map((s) => startNode(s, lower, publicKey)));
  const failures = started.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length > 0) {
    await Promise.all(started.map((r) => (r.status === "fulfilled" ? r.value.stop() : undefined)));
    throw failures[0].reason;
  }
  return started.map((r) => (r as PromiseFulfilledResult<TestNode>).value);
}

/** Stops every node given; used in `after` hooks. */
export async function stopNodes(nodes: TestNode[] | undefined): Promise<void> {
  await Promise.all((nodes ?? []).map((n) => n.stop()));
}
