// The bootstrap steps on a test node (real systemd, OpenSSH, sudo, puppet-agent), sent exactly as
// @pulumi/command sends them: the command text over an SSH exec channel as the unprivileged `ubuntu` user,
// data on stdin, the module upload over SFTP. Test nodes: 198.51.100.201 (this suite's slice: .200–.209).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "ssh2";
import { TestNode, startNodes, testSshKey } from "../rig/nodes";
import {
  DEFAULT_PATHS, STEP_TIMEOUTS, installModulesScript, installPuppetScript, puppetApplyScript, remoteCommand,
  waitForCloudInitScript, writeTokenFileScript,
} from "../../components/bootstrap-scripts";
import { renderManifest } from "../../components/puppet-manifest";
import { writeStandinK3sModule } from "../helpers/standin-k3s-module";
import { sftpUploadDir, sshExec } from "../helpers/ssh-exec";

const IP = "198.51.100.201";
const USER = "ubuntu";
const TOKEN = "K10" + "ab".repeat(32) + "::server:" + "5e".repeat(16);

let node: TestNode;
let ssh: Client;
before(async () => {
  [node] = await startNodes([{ name: "bs-node-0", ip: IP }]);
  ssh = new Client();
  await new Promise<void>((resolve, reject) => {
    ssh.once("ready", () => resolve()).once("error", reject)
      .connect({ host: IP, username: USER, privateKey: testSshKey().privateKey, readyTimeout: 20_000 });
  });
});

after(async () => {
  ssh?.end();
  await node?.stop();
});

const run = (command: string, stdin?: string) => sshExec(ssh, command, stdin);

const step = (script: string, timeoutSeconds: number, asRoot = true) =>
  remoteCommand(script, { timeoutSeconds, asRoot, sshUser: USER });


test("the bootstrap steps run on a node as the sudo user: modules installed root-owned, token 0600, manifest applied", async () => {
  const cloudInit = await run(step(waitForCloudInitScript(STEP_TIMEOUTS.cloudInit), 30, false));
  assert.equal(cloudInit.code, 0, cloudInit.stderr);
  assert.match(cloudInit.stdout, /no cloud-init on this node/);

  const puppet = await run(step(installPuppetScript(), 60));
  assert.equal(puppet.code, 0, puppet.stderr);
  assert.match(puppet.stdout, /already installed/);

  // A stand-in k3s_cluster with the real parameter list, recording what it was given.
  const modules = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-upload-"));
  writeStandinK3sModule(modules,
    `  file { '/etc/k3s-cluster/applied': ensure => file, content => "\${node_type} \${cluster_init} \${token_file} \${server_url}\\n" }`);
  await sftpUploadDir(ssh, modules, DEFAULT_PATHS.staging);
  const install = await run(step(installModulesScript(DEFAULT_PATHS, USER), 60));
  assert.equal(install.code, 0, install.stderr);
  const init = fs.statSync(path.join(node.rootDir, DEFAULT_PATHS.modulePath, "k3s_cluster/manifests/init.pp"));
  assert.equal(init.uid, 0, "installed modules belong to root");
  assert.ok(!fs.existsSync(path.join(node.rootDir, DEFAULT_PATHS.staging)), "staging removed");

  const token = await run(step(writeTokenFileScript(DEFAULT_PATHS.tokenFile), 30), TOKEN + "\n");
  assert.equal(token.code, 0, token.stderr);
  const tokenPath = path.join(node.rootDir, DEFAULT_PATHS.tokenFile);
  assert.equal(fs.readFileSync(tokenPath, "utf8"), TOKEN + "\n");
  assert.equal(fs.statSync(tokenPath).mode & 0o777, 0o600);
  assert.equal(fs.statSync(tokenPath).uid, 0);
  const asUser = await run(`cat ${DEFAULT_PATHS.tokenFile}`);
  assert.notEqual(asUser.code, 0, "the SSH user cannot read the token file without sudo");
  // The token was never a process argument on the node: nothing in its journal or shell history mentions it.
  const pw = "5e".repeat(16);
  const traces = await node.exec(`{ journalctl --no-pager -o cat 2>/dev/null; cat /home/*/.bash_history /root/.bash_history 2>/dev/null; grep -rIh -- ${pw} /var/log /tmp 2>/dev/null; } | grep -c -- ${pw} || true`);
  assert.equal(traces.stdout.trim(), "0");

  const manifest = renderManifest({
    nodeType: "agent", clusterInit: false, clusterName: "demo", tokenFile: DEFAULT_PATHS.tokenFile,
    serverUrl: "https://198.51.100.200:6443", k3sVersion: "v1.34.3+k3s1", nodeName: "bs-node-0", tlsSan: [],
    tokenTimeout: 60, waitForService: true,
  });
  const apply = await run(step(puppetApplyScript(DEFAULT_PATHS), 300), manifest);
  assert.equal(apply.code, 0, apply.stdout + apply.stderr);
  assert.match(apply.stdout, /changes applied/);
  assert.equal(fs.readFileSync(path.join(node.rootDir, "etc/k3s-cluster/applied"), "utf8"),
    `agent false ${DEFAULT_PATHS.tokenFile} https://198.51.100.200:6443\n`);
  const again = await run(step(puppetApplyScript(DEFAULT_PATHS), 300), manifest);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /nothing to change/);
});
