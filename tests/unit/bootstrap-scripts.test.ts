// The node-side scripts of the bootstrap: shellcheck-clean, and run for real with bash (and real Puppet) in a
// temporary root, the way they run on a node — command text through `sh -c`, data (a token, a manifest, a
// tar archive) on stdin. Scripts whose paths are fixed (k3s's own files, the bootstrap's marker) run in a
// throwaway root entered with chroot, so this machine's /usr/local, /etc and /var are never touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  INSTALLED_MARKER_DIR, installModulesScript, installPuppetScript, puppetApplyScript, readKubeconfigScript,
  remoteCommand, removeModulesScript, removePuppetScript, removeTokenFileScript, rewriteServerTokenFileScript, shellQuote, uninstallK3sScript,
  waitForCloudInitScript, writeTokenFileScript,
} from "../../components/bootstrap-scripts";
import { renderManifest } from "../../components/puppet-manifest";
import { writeStandinK3sModule } from "../helpers/standin-k3s-module";
import {
  assertShellcheckClean, fakeRoot, recordingStub, rootCommand, runInFakeRoot, stubCalls, tmpRoot,
} from "./script-root";

const TOKEN = "K10" + "ab".repeat(32) + "::server:" + "5e".repeat(16);

/** Runs a command text the way sshd does: through the login shell (`sh -c`). */
function runCommandText(text: string, input: string | Buffer = "", env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync("sh", ["-c", text], { input, encoding: "utf8", env, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runScript(script: string, input: string | Buffer = "") {
  return runCommandText(remoteCommand(script, { timeoutSeconds: 30, asRoot: true, sshUser: "root" }), input);
}

const scripts: Record<string, string> = {
  waitForCloudInit: waitForCloudInitScript(900),
  installPuppet: installPuppetScript(),
  installModules: installModulesScript({ modulePath: "/etc/k3s-cluster/puppet/modules" }),
  removeModules: removeModulesScript({ modulePath: "/etc/k3s-cluster/puppet/modules", manifestPath: "/etc/k3s-cluster/site.pp" }),
  removePuppet: removePuppetScript(),
  writeTokenFile: writeTokenFileScript("/etc/rancher/k3s/cluster-token"),
  rewriteServerTokenFile: rewriteServerTokenFileScript("/etc/rancher/k3s/cluster-token"),
  removeTokenFile: removeTokenFileScript("/etc/rancher/k3s/cluster-token"),
  uninstallK3s: uninstallK3sScript({ tokenFile: "/etc/rancher/k3s/cluster-token" }),
  puppetApply: puppetApplyScript({ manifestPath: "/etc/k3s-cluster/site.pp", modulePath: "/etc/k3s-cluster/puppet/modules" }),
  readKubeconfig: readKubeconfigScript(),
};

for (const [name, script] of Object.entries(scripts)) {
  test(`${name}: shellcheck finds nothing in the script or in the command text sent over SSH`, () => {
    assertShellcheckClean(name, script);
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

/** A module tree as the RemoteCommand provider streams it: a tar of the directory's contents (`./k3s_cluster/…`). */
function moduleArchive(files: Record<string, string>, opts: { owner?: number; mode?: number } = {}): Buffer {
  const dir = tmpRoot();
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content, { mode: opts.mode ?? 0o644 });
  }
  // The provider packs as root (--owner=0); another owner here shows the install does not trust the archive's.
  const owner = String(opts.owner ?? 0);
  const r = spawnSync("tar", ["-C", dir, `--owner=${owner}`, `--group=${owner}`, "--numeric-owner", "-cf", "-", "."]);
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

const MODULES = {
  "k3s_cluster/manifests/init.pp": "class k3s_cluster {}\n",
  "k3s_cluster/files/k3s-cluster-check.sh": "#!/bin/sh\n",
  "stdlib/manifests/init.pp": "class stdlib {}\n",
};

test("installModules unpacks the tar on stdin into a root-owned tree, whatever owner and modes the archive carries", () => {
  const root = tmpRoot();
  const target = path.join(root, "etc/k3s-cluster/puppet/modules");
  const r = runScript(installModulesScript({ modulePath: target }), moduleArchive(MODULES, { owner: 4242, mode: 0o666 }));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(target).sort(), ["k3s_cluster", "stdlib"], "no unpacking directory left beside the modules");
  for (const rel of Object.keys(MODULES)) {
    const st = fs.statSync(path.join(target, rel));
    assert.equal(st.uid, 0, `${rel} owned by root, not by the archive's uid 4242`);
    assert.equal(st.gid, 0);
    assert.equal(st.mode & 0o777, 0o644, `${rel}: readable by puppet, writable only by root`);
    assert.equal(fs.readFileSync(path.join(target, rel), "utf8"), MODULES[rel as keyof typeof MODULES]);
  }
  const dirSt = fs.statSync(path.join(target, "k3s_cluster/manifests"));
  assert.equal(dirSt.mode & 0o777, 0o755);
  assert.equal(dirSt.uid, 0);
  assert.equal(fs.statSync(target).mode & 0o777, 0o755);
  assert.match(r.stdout, /^Puppet modules installed in .*: (k3s_cluster stdlib|stdlib k3s_cluster) $/m);
});

test("installModules replaces an older copy of a module instead of merging into it, and keeps modules the archive does not carry", () => {
  const root = tmpRoot();
  const target = path.join(root, "modules");
  fs.mkdirSync(path.join(target, "k3s_cluster/manifests"), { recursive: true });
  fs.writeFileSync(path.join(target, "k3s_cluster/manifests/removed_in_new_version.pp"), "class old {}\n");
  fs.writeFileSync(path.join(target, "k3s_cluster/manifests/init.pp"), "class k3s_cluster { # old }\n");
  fs.mkdirSync(path.join(target, "site_local/manifests"), { recursive: true });
  const r = runScript(installModulesScript({ modulePath: target }), moduleArchive(MODULES));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!fs.existsSync(path.join(target, "k3s_cluster/manifests/removed_in_new_version.pp")), "a file the new version dropped is gone");
  assert.equal(fs.readFileSync(path.join(target, "k3s_cluster/manifests/init.pp"), "utf8"), "class k3s_cluster {}\n");
  assert.deepEqual(fs.readdirSync(target).sort(), ["k3s_cluster", "site_local", "stdlib"]);
});

test("installModules refuses an archive without k3s_cluster/manifests/init.pp, an empty stdin or garbage, and leaves the installed copy alone", () => {
  const root = tmpRoot();
  const target = path.join(root, "modules");
  assert.equal(runScript(installModulesScript({ modulePath: target }), moduleArchive(MODULES)).code, 0);
  const before = fs.readFileSync(path.join(target, "k3s_cluster/manifests/init.pp"), "utf8");
  const withoutModule = runScript(installModulesScript({ modulePath: target }),
    moduleArchive({ "stdlib/manifests/init.pp": "class stdlib { # new }\n", "k3s_cluster/README.md": "no manifests\n" }));
  assert.notEqual(withoutModule.code, 0);
  assert.match(withoutModule.stderr, /no k3s_cluster module \(manifests\/init\.pp\) in the archive that arrived on stdin/);
  const empty = runScript(installModulesScript({ modulePath: target }), "");
  assert.notEqual(empty.code, 0, "an empty stdin is not an empty module tree");
  const garbage = runScript(installModulesScript({ modulePath: target }), "this is not a tar archive\n".repeat(40));
  assert.notEqual(garbage.code, 0);
  assert.equal(fs.readFileSync(path.join(target, "k3s_cluster/manifests/init.pp"), "utf8"), before);
  assert.equal(fs.readFileSync(path.join(target, "stdlib/manifests/init.pp"), "utf8"), "class stdlib {}\n", "nothing of a refused archive is installed");
  assert.deepEqual(fs.readdirSync(target).sort(), ["k3s_cluster", "stdlib"], "the unpacking directory is removed on failure too");
});

test("removeTokenFile removes the token file and nothing beside it; a second run succeeds", () => {
  const root = tmpRoot();
  const file = path.join(root, "etc/rancher/k3s/cluster-token");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, TOKEN + "\n", { mode: 0o600 });
  fs.writeFileSync(path.join(path.dirname(file), "config.yaml"), "node-name: x\n");
  const r = runScript(removeTokenFileScript(file));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!fs.existsSync(file));
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ["config.yaml"]);
  assert.ok(!(r.stdout + r.stderr).includes(TOKEN));
  const again = runScript(removeTokenFileScript(file));
  assert.equal(again.code, 0, again.stderr);
});

test("removeModules removes the module copy, the manifest and their directories once empty; a second run succeeds", () => {
  const root = tmpRoot();
  const paths = { modulePath: path.join(root, "etc/k3s-cluster/puppet/modules"), manifestPath: path.join(root, "etc/k3s-cluster/site.pp") };
  assert.equal(runScript(installModulesScript(paths), moduleArchive(MODULES)).code, 0);
  fs.writeFileSync(paths.manifestPath, "class { 'k3s_cluster': }\n");
  const r = runScript(removeModulesScript(paths));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(path.join(root, "etc")), [], "etc/k3s-cluster and etc/k3s-cluster/puppet are gone");
  assert.equal(runScript(removeModulesScript(paths)).code, 0, "idempotent: destroy after a half-done destroy");
  // A directory that holds something else than the bootstrap's files is kept, with that file.
  assert.equal(runScript(installModulesScript(paths), moduleArchive(MODULES)).code, 0);
  fs.writeFileSync(path.join(root, "etc/k3s-cluster/operator-notes.txt"), "mine\n");
  assert.equal(runScript(removeModulesScript(paths)).code, 0);
  assert.deepEqual(fs.readdirSync(path.join(root, "etc/k3s-cluster")), ["operator-notes.txt"]);
});

const marker = `${INSTALLED_MARKER_DIR}/puppet-agent`;

test("removePuppet leaves a puppet-agent the node came with (no marker): no package manager is called", () => {
  const root = fakeRoot({ "/stub/apt-get": recordingStub("apt-get"), "/stub/dnf": recordingStub("dnf") });
  const r = runInFakeRoot(root, rootCommand(removePuppetScript()));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /puppet-agent came with the node: left installed/);
  assert.equal(stubCalls(root), "");
});

test("removePuppet purges the puppet-agent the bootstrap installed (marker) with apt-get, then forgets the marker", () => {
  const root = fakeRoot({ [marker]: "", "/stub/apt-get": recordingStub("apt-get") });
  const r = runInFakeRoot(root, rootCommand(removePuppetScript()));
  assert.equal(r.code, 0, r.stderr);
  assert.match(stubCalls(root), /^apt-get .*-y purge puppet-agent$/m);
  assert.ok(!fs.existsSync(path.join(root, INSTALLED_MARKER_DIR)), "the marker directory is removed");
  assert.match(r.stdout, /puppet-agent removed/);
  // Run again (a destroy retried): the marker is gone, so the package manager is not asked twice.
  assert.equal(runInFakeRoot(root, rootCommand(removePuppetScript())).code, 0);
  assert.equal(stubCalls(root).split("\n").filter(Boolean).length, 1);
});

test("removePuppet uses dnf where there is no apt-get, and keeps the marker when the removal fails so a retry tries again", () => {
  // PATH holds only what the script needs besides the package manager, so apt-get is really absent.
  const tools = Object.fromEntries(["bash", "timeout", "rm"].map((t) => [`/tools/${t}`, { link: `/usr/bin/${t}` }]));
  const root = fakeRoot({ ...tools, [marker]: "", "/stub/dnf": recordingStub("dnf") });
  const r = runInFakeRoot(root, rootCommand(removePuppetScript()), { PATH: "/stub:/tools" });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(stubCalls(root), "dnf -q -y remove puppet\n");
  assert.ok(!fs.existsSync(path.join(root, marker)));

  const failing = fakeRoot({ [marker]: "", "/stub/apt-get": recordingStub("apt-get", "echo 'E: dpkg was interrupted' >&2; exit 100") });
  const f = runInFakeRoot(failing, rootCommand(removePuppetScript()));
  assert.equal(f.code, 100, "the step fails with the package manager's exit code");
  assert.match(f.stderr, /dpkg was interrupted/);
  assert.ok(fs.existsSync(path.join(failing, marker)), "the marker stays: the package is still the bootstrap's to remove");
});

test("uninstallK3s removes k3s's units, binaries, data, configuration, facts and the token file, keeps the rest, and a second run succeeds", () => {
  const tokenFile = "/srv/k3s-test/cluster-token"; // not under /etc/rancher: proves the path parameter is used
  const root = fakeRoot({
    "/usr/local/bin/k3s": "binary",
    "/usr/local/bin/kubectl": { link: "k3s" },
    "/usr/local/bin/crictl": { link: "/opt/other/crictl" },
    "/usr/local/bin/k3s-killall.sh": recordingStub("k3s-killall.sh"),
    // The install script's uninstaller runs first; its failure is reported and the rest removed by hand.
    "/usr/local/bin/k3s-uninstall.sh": recordingStub("k3s-uninstall.sh", "exit 3"),
    "/usr/local/bin/k3s-cluster-check": "module helper",
    "/usr/local/sbin/k3s-cluster-collect": "module helper",
    "/usr/local/bin/helm": "someone else's",
    "/etc/systemd/system/k3s.service": "[Unit]\n",
    "/etc/systemd/system/k3s.service.env": "K3S_TOKEN_FILE=x\n",
    "/etc/systemd/system/sshd.service": "[Unit]\n",
    "/etc/rancher/k3s/config.yaml": "node-name: s0\n",
    "/etc/rancher/k3s/k3s.yaml": "apiVersion: v1\n",
    [tokenFile]: TOKEN + "\n",
    "/srv/k3s-test/keep": "",
    "/var/lib/rancher/k3s/server/token": TOKEN + "\n",
    "/etc/facter/facts.d/k3s_cluster_info.yaml": "k3s_cluster_info: {}\n",
    "/etc/facter/facts.d/site.yaml": "site: x\n",
    "/tmp/k3s_cluster_info_1234": "",
    // `systemctl cat` finds a unit only while its file exists, as the real one does.
    "/stub/systemctl": recordingStub("systemctl", 'if [ "$1" = cat ]; then [ -e "/etc/systemd/system/$2" ]; fi'),
  });
  const r = runInFakeRoot(root, rootCommand(uninstallK3sScript({ tokenFile })));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /k3s-uninstall\.sh exited 3: removing the rest by hand/);
  const gone = ["usr-local/bin/k3s", "usr-local/bin/kubectl", "usr-local/bin/k3s-killall.sh", "usr-local/bin/k3s-uninstall.sh",
    "usr-local/bin/k3s-cluster-check", "usr-local/sbin/k3s-cluster-collect", "etc/systemd/system/k3s.service",
    "etc/systemd/system/k3s.service.env", "etc/rancher", "var/lib/rancher", `.${tokenFile}`,
    "etc/facter/facts.d/k3s_cluster_info.yaml", "tmp/k3s_cluster_info_1234"];
  for (const rel of gone) assert.ok(!fs.existsSync(path.join(root, rel)) && !isLink(path.join(root, rel)), `${rel} removed`);
  const kept = ["usr-local/bin/crictl", "usr-local/bin/helm", "etc/systemd/system/sshd.service", "srv/k3s-test/keep", "etc/facter/facts.d/site.yaml"];
  for (const rel of kept) assert.ok(fs.existsSync(path.join(root, rel)) || isLink(path.join(root, rel)), `${rel} kept`);
  const calls = stubCalls(root).split("\n").filter(Boolean);
  assert.ok(calls.includes("systemctl disable --now k3s.service"), calls.join("\n"));
  assert.ok(!calls.includes("systemctl disable --now k3s-agent.service"), "a unit that is not there is not touched");
  assert.ok(calls.includes("k3s-uninstall.sh") && calls.includes("k3s-killall.sh"));
  assert.equal(calls.at(-1), "systemctl daemon-reload");
  assert.ok(!(r.stdout + r.stderr).includes(TOKEN));

  const again = runInFakeRoot(root, rootCommand(uninstallK3sScript({ tokenFile })));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /k3s removed from this node/);
  const second = stubCalls(root).split("\n").filter(Boolean).slice(calls.length);
  assert.deepEqual(second, ["systemctl cat k3s.service", "systemctl cat k3s-agent.service", "systemctl daemon-reload"],
    "nothing left to disable or run on the second pass");
});

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

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
    tokenTimeout: 300, startService: true,
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
