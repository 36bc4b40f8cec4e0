// The bootstrap's command texts over a real OpenSSH server, sent as @pulumi/command sends them: an exec
// channel (sshd runs it with the login shell's `-c`), data on stdin, the module upload over SFTP.
// A private sshd on 127.0.52.1:2222 (loopback, its own host key and authorized key), run as a plain process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "ssh2";
import { installModulesScript, remoteCommand, writeTokenFileScript } from "../../components/bootstrap-scripts";
import { writeStandinK3sModule } from "../helpers/standin-k3s-module";
import { sftpUploadDir, sshExec } from "../helpers/ssh-exec";

const HOST = "127.0.52.1";
const PORT = 2222;
const PW = "5e".repeat(16);
const TOKEN = "K10" + "ab".repeat(32) + "::server:" + PW;

let dir: string;
let sshd: ChildProcess;
let ssh: Client;
let sshdLog = "";

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-sshd-"));
  for (const key of ["host", "client"]) {
    const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, key)]);
    assert.equal(r.status, 0, String(r.stderr));
  }
  fs.copyFileSync(path.join(dir, "client.pub"), path.join(dir, "authorized_keys"));
  fs.writeFileSync(path.join(dir, "sshd_config"), [
    `ListenAddress ${HOST}:${PORT}`, `HostKey ${dir}/host`, `AuthorizedKeysFile ${dir}/authorized_keys`,
    `PidFile ${dir}/sshd.pid`, "PermitRootLogin prohibit-password", "PasswordAuthentication no",
    "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "AcceptEnv LANG LC_*",
    "Subsystem sftp internal-sftp", "LogLevel VERBOSE",
  ].join("\n") + "\n");
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege-separation directory
  sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
  sshd.stderr!.on("data", (d) => { sshdLog += d; });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((res) => {
      const s = net.connect(PORT, HOST, () => { s.end(); res(true); }).on("error", () => res(false));
    });
    if (up) break;
    assert.ok(Date.now() < deadline, `sshd did not listen on ${HOST}:${PORT} within 10 s: ${sshdLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  ssh = new Client();
  await new Promise<void>((resolve, reject) => {
    ssh.once("ready", () => resolve()).once("error", reject)
      .connect({ host: HOST, port: PORT, username: "root", privateKey: fs.readFileSync(path.join(dir, "client")), readyTimeout: 10_000 });
  });
});

after(() => {
  ssh?.end();
  sshd?.kill("SIGTERM");
});

const run = (command: string, stdin?: string, env?: Record<string, string>) => sshExec(ssh, command, stdin, env);

test("the token-file step over SSH: token on stdin only, file root 0600, nothing in sshd's log or the output", async () => {
  const file = path.join(dir, "etc/rancher/k3s/cluster-token");
  const command = remoteCommand(writeTokenFileScript(file), { timeoutSeconds: 30, asRoot: true, sshUser: "root" });
  assert.ok(!command.includes(PW));
  const r = await run(command, TOKEN + "\n");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(file, "utf8"), TOKEN + "\n");
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.ok(!(r.stdout + r.stderr + sshdLog).includes(PW));
});

test("an environment request is not how a value reaches a command: stock AcceptEnv drops it", async () => {
  const r = await run(`printf '%s' "\${K3S_TOKEN:-unset}"`, undefined, { K3S_TOKEN: TOKEN });
  assert.equal(r.stdout, "unset");
});

test("the module upload over SFTP as the SSH user, then the root-owned install", async () => {
  const local = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-upload-"));
  writeStandinK3sModule(local, "");
  const staging = path.join(dir, "staging");
  await sftpUploadDir(ssh, local, staging);
  const target = path.join(dir, "modules");
  const r = await run(remoteCommand(installModulesScript({ staging, modulePath: target }, "root"), { timeoutSeconds: 60, asRoot: true, sshUser: "root" }));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(target, "k3s_cluster/manifests/init.pp")));
  assert.ok(!fs.existsSync(staging));
});

test("a step that overruns its bound is stopped by timeout, over SSH too", async () => {
  const r = await run(remoteCommand("sleep 30", { timeoutSeconds: 1, asRoot: false, sshUser: "root" }));
  assert.equal(r.code, 124);
});
