// The node-side scripts of the bootstrap: shellcheck-clean, and run for real with bash (and real Puppet) in a
// temporary root, the way they run on a node — command text through `sh -c`, data on stdin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  installModulesScript, installPuppetScript, puppetApplyScript, readKubeconfigScript, remoteCommand,
  shellQuote, waitForCloudInitScript, writeTokenFileScript,
} from "../../components/bootstrap-scripts";
import { renderManifest } from "../../components/puppet-manifest";
import { writeStandinK3sModule } from "../helpers/standin-k3s-module";

const TOKEN = "K10" + "ab".repeat(32) + "::server:" + "5e".repeat(16);

function tmpRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "k3s-bootstrap-"));
}

/** Runs a command text the way sshd does: through the login shell (`sh -c`). */
function runCommandText(text: string, input = "", env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync("sh", ["-c", text], { input, encoding: "utf8", env, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runScript(script: string, input = "") {
  return runCommandText(remoteCommand(script, { timeoutSeconds: 30, asRoot: true, sshUser: "root" }), input);
}

const scripts: Record<string, string> = {
  waitForCloudInit: waitForCloudInitScript(900),
  installPuppet: installPuppetScript(),
  installModules: installModulesScript({ staging: "/tmp/k3s staging", modulePath: "/etc/k3s-cluster/puppet/modules" }, "ubuntu"),
  writeTokenFile: writeTokenFileScript("/etc/rancher/k3s/cluster-token"),
  puppetApply: puppetApplyScript({ manifestPath: "/etc/k3s-cluster/site.pp", modulePath: "/etc/k3s-cluster/puppet/modules" }),
  readKubeconfig: readKubeconfigScript(),
};

for (const [name, script] of Object.entries(scripts)) {
  test(`${name}: shellcheck finds nothing in the script or in the command text sent over SSH`, () => {
    const dir = tmpRoot();
    const file = path.join(dir, `${name}.sh`);
    fs.writeFileSync(file, `#!/usr/bin/env bash\n${script}`);
    const r = spawnSync("shellcheck", ["-s", "bash", "-S", "style", file], { encoding: "utf8" });
    assert.equal(r.error, undefined, "shellcheck must be installed (tests/setup/debian-packages.txt)");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const wrapped = path.join(dir, `${name}.cmd.sh`);
    fs.writeFileSync(wrapped, `#!/bin/sh\n${remoteCommand(script, { timeoutSeconds: 60, asRoot: true, sshUser: "ubuntu" })}\n`);
    // SC2016 ("expressions don't expand in single quotes") is the point of the wrapper: the login shell
    // must pass the script to bash untouched.
    const w = spawnSync("shellcheck", ["-s", "sh", "-S", "style", "-e", "SC2016", wrapped], { encoding: "utf8" });
    assert.equal(w.status, 0, w.stdout + w.stderr);
  });
}

test("remoteCommand bounds every step with timeout and uses sudo -n only for a non-root user", () => {
  assert.match(remoteCommand("true", { timeoutSeconds: 42, asRoot: true, sshUser: "ubuntu" }), /^timeout -k 10 42 sudo -n bash -c 'true'$/);
  assert.match(remoteCommand("true", { timeoutSeconds: 42, asRoot: true, sshUser: "root" }), /^timeout -k 10 42 bash -c 'true'$/);
  assert.match(remoteCommand("true", { timeoutSeconds: 42, asRoot: false, sshUser: "ubuntu" }), /^timeout -k 10 42 bash -c 'true'$/);
  const r = runCommandText(remoteCommand("sleep 5", { timeoutSeconds: 1, asRoot: false, sshUser: "root" }));
  assert.equal(r.code, 124, "timeout stops a step that overruns its bound");
});

test("shellQuote keeps any value one word", () => {
  const nasty = `it's "$(rm -rf /)" \`x\` \\ ;|&`;
  const r = runCommandText(`printf %s ${shellQuote(nasty)}`);
  assert.equal(r.stdout, nasty);
});

test("writeTokenFile: the token from stdin lands in a root-only 0600 file, never in the text or the output", () => {
  const root = tmpRoot();
  const file = path.join(root, "etc/rancher/k3s/cluster-token");
  const script = writeTokenFileScript(file);
  assert.ok(!script.includes(TOKEN));
  // Through `sudo -n`, as for a cloud image's default user: stdin must pass through sudo to the script.
  const r = runCommandText(remoteCommand(script, { timeoutSeconds: 30, asRoot: true, sshUser: "ubuntu" }), TOKEN + "\n");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(file, "utf8"), TOKEN + "\n");
  const st = fs.statSync(file);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.uid, 0);
  assert.equal(st.gid, 0);
  assert.ok(!(r.stdout + r.stderr).includes(TOKEN), "nothing the step prints holds the token");
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ["cluster-token"], "no temp file left behind");
  // Rewriting (a rotated token) replaces the file in place, still 0600.
  const r2 = runScript(script, "K10" + "cd".repeat(32) + "::server:" + "77".repeat(16));
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.match(fs.readFileSync(file, "utf8"), /^K10cdcd/);
});

test("writeTokenFile refuses an empty or multi-line stdin and leaves the existing file alone", () => {
  const root = tmpRoot();
  const file = path.join(root, "cluster-token");
  assert.equal(runScript(writeTokenFileScript(file), TOKEN).code, 0);
  const empty = runScript(writeTokenFileScript(file), "");
  assert.notEqual(empty.code, 0);
  assert.match(empty.stderr, /no token arrived on stdin/);
  const two = runScript(writeTokenFileScript(file), "a\nb\n");
  assert.notEqual(two.code, 0);
  assert.match(two.stderr, /not one line/);
  const spaced = runScript(writeTokenFileScript(file), "a b\n");
  assert.notEqual(spaced.code, 0);
  assert.equal(fs.readFileSync(file, "utf8"), TOKEN);
  assert.deepEqual(fs.readdirSync(root), ["cluster-token"]);
});

function stageModule(staging: string, nested: boolean) {
  const base = nested ? path.join(staging, "modules") : staging;
  fs.mkdirSync(path.join(base, "k3s_cluster/manifests"), { recursive: true });
  fs.writeFileSync(path.join(base, "k3s_cluster/manifests/init.pp"), "class k3s_cluster {}\n");
  fs.mkdirSync(path.join(base, "stdlib/manifests"), { recursive: true });
  fs.writeFileSync(path.join(base, "stdlib/manifests/init.pp"), "class stdlib {}\n");
}

for (const nested of [false, true]) {
  test(`installModules installs the upload root-owned and removes the staging dir (${nested ? "copied into an existing dir" : "fresh upload"})`, () => {
    const root = tmpRoot();
    const staging = path.join(root, "staging");
    const target = path.join(root, "etc/k3s-cluster/puppet/modules");
    stageModule(staging, nested);
    fs.mkdirSync(path.join(target, "k3s_cluster/old"), { recursive: true }); // a previous version
    fs.chmodSync(path.join(staging, nested ? "modules/k3s_cluster/manifests/init.pp" : "k3s_cluster/manifests/init.pp"), 0o600);
    const r = runScript(installModulesScript({ staging, modulePath: target }, "root"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(target).sort(), ["k3s_cluster", "stdlib"]);
    assert.ok(!fs.existsSync(path.join(target, "k3s_cluster/old")), "the previous version is replaced, not merged");
    const init = fs.statSync(path.join(target, "k3s_cluster/manifests/init.pp"));
    assert.equal(init.mode & 0o777, 0o644, "readable by puppet, writable only by root");
    assert.equal(init.uid, 0);
    assert.ok(!fs.existsSync(staging));
    assert.match(r.stdout, /installed in .*k3s_cluster/);
  });
}

test("installModules refuses a staging dir that is a symlink or belongs to someone else", () => {
  const root = tmpRoot();
  const real = path.join(root, "real");
  stageModule(real, false);
  fs.symlinkSync(real, path.join(root, "link"));
  const target = path.join(root, "modules");
  const viaLink = runScript(installModulesScript({ staging: path.join(root, "link"), modulePath: target }, "root"));
  assert.notEqual(viaLink.code, 0);
  assert.match(viaLink.stderr, /symlink/);
  const other = runScript(installModulesScript({ staging: real, modulePath: target }, "ubuntu"));
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /belongs to root, not ubuntu/);
  assert.ok(!fs.existsSync(target));
  const empty = path.join(root, "empty");
  fs.mkdirSync(empty);
  assert.match(runScript(installModulesScript({ staging: empty, modulePath: target }, "root")).stderr, /no k3s_cluster module/);
});

test("waitForCloudInit returns at once on a node without cloud-init", () => {
  // PATH without cloud-init, as on the test nodes.
  const r = runCommandText(remoteCommand(waitForCloudInitScript(900), { timeoutSeconds: 10, asRoot: false, sshUser: "root" }),
    "", { ...process.env, PATH: "/usr/bin:/bin" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /no cloud-init on this node/);
});

test("installPuppet does nothing when puppet is already there", () => {
  const r = runScript(installPuppetScript());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^puppet already installed \(\/\S+\/puppet\)$/m);
});

test("readKubeconfig prints the file, and fails clearly when k3s has not written it", () => {
  const root = tmpRoot();
  const file = path.join(root, "k3s.yaml");
  const missing = runScript(readKubeconfigScript(file));
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /has not written its admin kubeconfig/);
  fs.writeFileSync(file, "apiVersion: v1\n");
  assert.equal(runScript(readKubeconfigScript(file)).stdout, "apiVersion: v1\n");
});

// Real Puppet, run as an unprivileged user with its own HOME so it never touches the host's Puppet setup.
function puppetApplyAsNobody(script: string, manifest: string, home: string) {
  const text = remoteCommand(script, { timeoutSeconds: 120, asRoot: false, sshUser: "root" });
  const r = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", text],
    { input: manifest, encoding: "utf8", env: { ...process.env, HOME: home }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("puppetApply writes the manifest from stdin and treats Puppet's exit 2 (changes) as success, 4/6 as failure", () => {
  const root = tmpRoot();
  fs.chmodSync(root, 0o777);
  const modules = path.join(root, "modules");
  const out = path.join(root, "applied");
  writeStandinK3sModule(modules, `  if $node_name == 'broken' { file { '/proc/definitely/not/writable': ensure => file } }
  else { file { '${out}': ensure => file, content => "\${node_type} \${node_name} \${token_file} \${tls_san}\\n" } }`);
  const manifestPath = path.join(root, "etc/site.pp");
  fs.mkdirSync(path.dirname(manifestPath));
  fs.chownSync(path.dirname(manifestPath), 65534, 65534);
  const script = puppetApplyScript({ manifestPath, modulePath: modules });
  const params = {
    nodeType: "agent" as const, clusterInit: false, clusterName: "demo", tokenFile: "/etc/rancher/k3s/cluster-token",
    serverUrl: "https://10.0.1.10:6443", k3sVersion: "v1.34.3+k3s1", nodeName: "demo-agent-0", tlsSan: ["203.0.113.10"],
    tokenTimeout: 300, waitForService: true,
  };
  const ok = puppetApplyAsNobody(script, renderManifest(params), root);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /changes applied/);
  assert.equal(fs.readFileSync(out, "utf8"), "agent demo-agent-0 /etc/rancher/k3s/cluster-token [203.0.113.10]\n");
  assert.equal(fs.readFileSync(manifestPath, "utf8"), renderManifest(params));
  assert.equal(fs.statSync(manifestPath).mode & 0o777, 0o644);
  const again = puppetApplyAsNobody(script, renderManifest(params), root);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /nothing to change/);
  const broken = puppetApplyAsNobody(script, renderManifest({ ...params, nodeName: "broken" }), root);
  assert.notEqual(broken.code, 0);
  assert.match(broken.stderr, /puppet apply failed with exit code (4|6)/);
  const empty = puppetApplyAsNobody(script, "", root);
  assert.match(empty.stderr, /no manifest arrived on stdin/);
});
