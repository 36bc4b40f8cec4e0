// The RemoteCommand provider itself — check, diff, create, update, delete — against a real OpenSSH server,
// with the bootstrap's own scripts as its commands: a private sshd on 127.0.52.1:2222 (loopback, its own
// host key and authorized key), run as a plain process. Outside the engine's provider host the step's lines
// go to stderr, where each test collects them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  installModulesScript, remoteCommand, removeModulesScript, removeTokenFileScript, writeTokenFileScript,
} from "../../components/bootstrap-scripts";
import {
  REMOTE_COMMAND_SECRET_OUTPUTS, remoteCommandProvider, type Around, type RemoteCommandProps,
} from "../../components/remote/command";
import { writeStandinK3sModule } from "../helpers/standin-k3s-module";
import { runInProviderHost } from "../helpers/serialize-provider";

const HOST = "127.0.52.1";
const PORT = 2222;
const NODE = "unit-node-7";
const PW = "5e".repeat(16);
const TOKEN = "K10" + "ab".repeat(32) + "::server:" + PW;
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
// A well-formed fingerprint of no key this sshd has.
const OTHER_KEY = "SHA256:" + "Q".repeat(43);

let dir: string;
let sshd: ChildProcess;
let sshdLog = "";
let privateKey: string;
let hostKey: string;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-sshd-"));
  for (const key of ["host", "client"]) {
    const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, key)]);
    assert.equal(r.status, 0, String(r.stderr));
  }
  privateKey = fs.readFileSync(path.join(dir, "client"), "utf8");
  // What the operator would compare: `ssh-keygen -lf` of the node's host key.
  hostKey = spawnSync("ssh-keygen", ["-l", "-f", path.join(dir, "host.pub")], { encoding: "utf8" }).stdout.split(/\s+/)[1];
  assert.match(hostKey, /^SHA256:/);
  fs.copyFileSync(path.join(dir, "client.pub"), path.join(dir, "authorized_keys"));
  fs.writeFileSync(path.join(dir, "sshd_config"), [
    `ListenAddress ${HOST}:${PORT}`, `HostKey ${dir}/host`, `AuthorizedKeysFile ${dir}/authorized_keys`,
    `PidFile ${dir}/sshd.pid`, "PermitRootLogin prohibit-password", "PasswordAuthentication no",
    "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "AcceptEnv LANG LC_*", "LogLevel VERBOSE",
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
});

after(() => {
  sshd?.kill("SIGTERM");
});

/** The inputs as the engine hands them to the provider: resolved, secrets decrypted. */
function props(over: Partial<RemoteCommandProps> = {}, conn: Partial<RemoteCommandProps["connection"]> = {}): RemoteCommandProps {
  return {
    logUrn: "",
    connection: { host: HOST, port: PORT, user: "root", privateKey, hostKey: "", dialTimeout: 20, node: NODE, ...conn },
    create: "true", update: "", delete: "", stdin: "", archiveDir: "", archiveDigest: "",
    timeoutSeconds: 30, logging: "stdoutAndStderr", captureStdout: false, triggers: [], rerunOn: [],
    ...over,
  };
}

const asRoot = (script: string, timeoutSeconds = 30) => remoteCommand(script, { timeoutSeconds, asRoot: true, sshUser: "root" });

/** Runs `fn`, collecting what the provider printed as the step's lines (stderr outside the engine). */
async function logged<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: Error; lines: string }> {
  const write = process.stderr.write;
  let lines = "";
  process.stderr.write = ((chunk: any) => { lines += String(chunk); return true; }) as typeof process.stderr.write;
  // The dialer's own "waiting for SSH" notice (a busy machine) is not the step's output.
  const steps = () => lines.split("\n").filter((l) => !l.startsWith("waiting for SSH")).join("\n");
  try {
    return { value: await fn(), lines: steps() };
  } catch (error) {
    return { error: error as Error, lines: steps() };
  } finally {
    process.stderr.write = write;
  }
}

const create = (p: RemoteCommandProps) => logged(() => remoteCommandProvider.create!(p));
const accepted = () => (sshdLog.match(/Accepted publickey/g) ?? []).length;

/** Paths of every output field whose value contains `needle`. */
function fieldsHolding(value: unknown, needle: string, where = ""): string[] {
  if (typeof value === "string") return value.includes(needle) ? [where] : [];
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => fieldsHolding(v, needle, where ? `${where}.${k}` : k));
  }
  return [];
}

test("check accepts the fingerprint ssh-keygen prints and unknown values, and refuses a malformed hostKey, host or command", async () => {
  assert.deepEqual((await remoteCommandProvider.check!({}, props({}, { hostKey })))!.failures, []);
  assert.deepEqual((await remoteCommandProvider.check!({}, props({ create: UNKNOWN }, { hostKey: UNKNOWN })))!.failures, [],
    "preview: values not known yet are not errors");
  assert.deepEqual((await remoteCommandProvider.check!({}, { ...props(), connection: UNKNOWN }))!.failures, []);
  for (const bad of ["SHA256:tooShort", "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48", hostKey.replace("SHA256:", "")]) {
    const r = await remoteCommandProvider.check!({}, props({}, { hostKey: bad }));
    assert.deepEqual(r.failures, [{
      property: "connection.hostKey",
      reason: `connection.hostKey must be SHA256:<43 base64 characters> as ssh-keygen -l prints it (got ${JSON.stringify(bad)})`,
    }]);
  }
  const r = await remoteCommandProvider.check!({}, props({ create: "" }, { host: "", privateKey: "" }));
  assert.deepEqual(r.failures!.map((f) => f.property).sort(), ["connection.host", "connection.privateKey", "create"]);
  assert.ok(!JSON.stringify(r.failures).includes("PRIVATE KEY"));
});

test("first contact trusts and records the node's host key; the token arrives on stdin into a root 0600 file, nowhere else", async () => {
  const file = path.join(dir, "etc/rancher/k3s/cluster-token");
  const p = props({
    create: asRoot(writeTokenFileScript(file)), delete: asRoot(removeTokenFileScript(file)),
    stdin: TOKEN + "\n", logging: "none",
  });
  assert.ok(!p.create.includes(PW) && !p.delete.includes(PW), "no secret in the command text");
  const r = await create(p);
  assert.equal(r.error, undefined, r.error?.message);
  const outs = r.value!.outs;
  assert.equal(fs.readFileSync(file, "utf8"), TOKEN + "\n");
  const st = fs.statSync(file);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.uid, 0);
  assert.equal(outs.hostKey, hostKey, "the key the node presented, as ssh-keygen -l prints it");
  assert.equal(outs.connection.hostKey, hostKey, "recorded: every later run of this step insists on it");
  assert.equal(outs.stdout, "", "stdout is kept only for a step that captures it");
  // The echoed stdin is the one place the token may be, and it is declared a secret output.
  assert.deepEqual(fieldsHolding(outs, PW), ["stdin"]);
  for (const key of ["stdin", "connection", "stdout"]) assert.ok(REMOTE_COMMAND_SECRET_OUTPUTS.includes(key));
  assert.equal(r.lines, "", "logging none: the step prints nothing");
  assert.ok(!sshdLog.includes(PW));

  // A malformed token is refused by the node; the error says so without showing it or what the step printed.
  const bad = await create({ ...p, stdin: `${TOKEN}\nsecond-line-${PW}\n` });
  assert.match(bad.error!.message, new RegExp(`^${NODE} create failed with exit code 1 on ${HOST.replace(/\./g, "\\.")}: \\(output not shown for this step\\)$`));
  assert.ok(!(bad.error!.message + bad.lines + sshdLog).includes(PW));
  assert.equal(fs.readFileSync(file, "utf8"), TOKEN + "\n", "the file is left as it was");

  // delete runs the step's delete command, without sending the token again.
  const d = await logged(() => remoteCommandProvider.delete!(r.value!.id, outs));
  assert.equal(d.error, undefined, d.error?.message);
  assert.ok(!fs.existsSync(file), "destroy removed the token file");
});

test("the archive step streams a local directory as tar on stdin into a root-owned module dir; its delete removes it", async () => {
  const local = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-archive-"));
  writeStandinK3sModule(local, "");
  fs.mkdirSync(path.join(local, "stdlib/manifests"), { recursive: true });
  fs.writeFileSync(path.join(local, "stdlib/manifests/init.pp"), "class stdlib {}\n", { mode: 0o600 });
  const paths = { modulePath: path.join(dir, "etc/k3s-cluster/puppet/modules"), manifestPath: path.join(dir, "etc/k3s-cluster/site.pp") };
  const p = props({
    create: asRoot(installModulesScript(paths)), delete: asRoot(removeModulesScript(paths)),
    archiveDir: local, archiveDigest: "d1",
  });
  const r = await create(p);
  assert.equal(r.error, undefined, r.error?.message);
  assert.equal(fs.readFileSync(path.join(paths.modulePath, "k3s_cluster/manifests/init.pp"), "utf8"),
    fs.readFileSync(path.join(local, "k3s_cluster/manifests/init.pp"), "utf8"));
  const st = fs.statSync(path.join(paths.modulePath, "stdlib/manifests/init.pp"));
  assert.equal(st.uid, 0);
  assert.equal(st.mode & 0o777, 0o644);
  assert.match(r.lines, /Puppet modules installed in .*modules: /, "the step's stdout is shown as its progress");
  assert.equal(r.value!.outs.stdout, "");

  const d = await logged(() => remoteCommandProvider.delete!(r.value!.id, r.value!.outs));
  assert.equal(d.error, undefined, d.error?.message);
  assert.ok(!fs.existsSync(path.join(dir, "etc/k3s-cluster")), "the module copy and its directories are gone");
});

test("a failing step's error names the node, the phase, the exit code and the tail of its stderr; with logging none, no output at all", async () => {
  const noisy = asRoot(`echo "progress on stdout"; for i in $(seq 1 20); do echo "err-line-$i" >&2; done; exit 3`);
  const shown = await create(props({ create: noisy }));
  const message = shown.error!.message;
  assert.match(message, new RegExp(`^${NODE} create failed with exit code 3 on ${HOST.replace(/\./g, "\\.")}: err-line-6\n`));
  assert.ok(message.endsWith("err-line-20"), message);
  assert.ok(!message.includes("err-line-5\n") && !message.includes("progress on stdout"), "the last 15 stderr lines, not stdout");
  assert.match(shown.lines, /progress on stdout/);
  assert.match(shown.lines, /err-line-1\n/, "every line was shown as it came");

  const quiet = await create(props({ create: noisy, logging: "none" }));
  assert.equal(quiet.error!.message, `${NODE} create failed with exit code 3 on ${HOST}: (output not shown for this step)`);
  assert.equal(quiet.lines, "");

  const onlyStderr = await create(props({ create: noisy, logging: "stderr" }));
  assert.doesNotMatch(onlyStderr.lines, /progress on stdout/);
  assert.match(onlyStderr.lines, /err-line-20/);
});

test("a step that overruns its bound is stopped on the node by timeout, and the provider does not wait past its own bound", async () => {
  const marker = path.join(dir, "overran");
  const started = Date.now();
  const r = await create(props({ create: remoteCommand(`sleep 3; touch ${marker}`, { timeoutSeconds: 1, asRoot: false, sshUser: "root" }) }));
  assert.match(r.error!.message, new RegExp(`^${NODE} create failed with exit code 124 `), "timeout's exit code");
  assert.ok(Date.now() - started < 2500, `stopped after ${Date.now() - started} ms`);
  await new Promise((res) => setTimeout(res, 3000));
  assert.ok(!fs.existsSync(marker), "the command was killed, not left running");

  // A command that ignores its node-side bound: the provider gives up at its own.
  const local = Date.now();
  const hung = await create(props({ create: "sleep 5", timeoutSeconds: 1 }));
  assert.match(hung.error!.message, new RegExp(`^${NODE} create on ${HOST.replace(/\./g, "\\.")}: the command did not finish within 1s`),
    "named like every other failure: node and phase");
  assert.ok(Date.now() - local < 3000, `gave up after ${Date.now() - local} ms`);
});

test("a failure to pack the archive names the node and the phase too", async () => {
  const first = await create(props({ create: "true" }));
  const missing = path.join(dir, "no-such-module-dir");
  const updated = await logged(() => remoteCommandProvider.update!(first.value!.id, first.value!.outs,
    props({ create: "cat > /dev/null", archiveDir: missing, archiveDigest: "d9" })));
  assert.match(updated.error?.message ?? "", new RegExp(`^${NODE} update on ${HOST.replace(/\./g, "\\.")}: packing ${missing} with tar failed \\(exit 2\\): tar: `));
});

test("at the provider's own bound the error says so; the node-side timeout every step carries stops the command", async () => {
  // Closing the channel does not stop a command, and OpenSSH refuses signal requests for root sessions, so
  // every step is wrapped in the node's `timeout` (remoteCommand) with a bound just under the provider's.
  const marker = path.join(dir, "outlived-the-provider");
  const r = await create(props({ create: `timeout -k 1 1 bash -c 'sleep 2; touch ${marker}'`, timeoutSeconds: 3 }));
  assert.match(r.error!.message, /failed with exit code 124/);
  const slow = await create(props({ create: `sleep 2`, timeoutSeconds: 1 }));
  assert.match(slow.error!.message, /did not finish within 1s; its own bound on the node \(timeout\) stops it/);
  await new Promise((res) => setTimeout(res, 2500));
  assert.ok(!fs.existsSync(marker), "the node-side bound stopped the command");
});

test("a pinned host key that the node does not present is refused before anything runs, naming the node and both keys", async () => {
  const marker = path.join(dir, "ran-despite-wrong-key");
  const first = await create(props({ create: "true" }));
  assert.equal(first.error, undefined, first.error?.message);
  const olds = first.value!.outs;
  const before = accepted();

  // An update whose inputs now pin another key (a host given with hostKey, or a replaced machine).
  const started = Date.now();
  const pinned = await logged(() => remoteCommandProvider.update!(first.value!.id, olds, props({ create: `touch ${marker}` }, { hostKey: OTHER_KEY })));
  assert.equal(pinned.error?.message,
    `${NODE} (${HOST}:${PORT}) presented host key ${hostKey}, not the pinned ${OTHER_KEY}: refusing to connect (a different machine, or a man in the middle)`);
  assert.ok(Date.now() - started < 5000, "a key mismatch is not retried for the dial timeout");

  // The key recorded at first contact is kept when the inputs pin none: a node presenting another one is refused too.
  const recorded = { ...olds, connection: { ...olds.connection, hostKey: OTHER_KEY } };
  const kept = await logged(() => remoteCommandProvider.update!(first.value!.id, recorded, props({ create: `touch ${marker}` })));
  assert.match(kept.error!.message, new RegExp(`presented host key ${hostKey.replace(/[+/]/g, "\\$&")}, not the pinned ${OTHER_KEY}`));

  const created = await create(props({ create: `touch ${marker}` }, { hostKey: OTHER_KEY }));
  assert.match(created.error!.message, new RegExp(`^${NODE} \\(`));

  assert.ok(!fs.existsSync(marker), "nothing ran");
  await new Promise((res) => setTimeout(res, 200)); // sshd's log lines trail the connection
  assert.equal(accepted(), before, "refused before authenticating: the node never saw the login key");
  // The right key, pinned, is accepted (the refusals above are about the key, not about pinning itself).
  assert.equal((await create(props({ create: "true" }, { hostKey }))).error, undefined);
});

test("diff: triggers replace, a changed command, stdin or rerunOn re-runs in place, nothing changed is no change", async () => {
  const base = props({ create: "echo hi", stdin: "a", triggers: ["t1"], rerunOn: ["r1"] });
  const r = await create(base);
  assert.equal(r.error, undefined, r.error?.message);
  const olds = r.value!.outs;
  const diff = (news: RemoteCommandProps) => remoteCommandProvider.diff!(r.value!.id, olds, news);
  // The inputs still say hostKey "" while the outputs recorded the key: that alone is no change.
  assert.deepEqual(await diff(base), { changes: false });
  assert.deepEqual(await diff({ ...base, triggers: ["t2"] }), { changes: true, replaces: ["triggers"], deleteBeforeReplace: false });
  assert.deepEqual(await diff({ ...base, triggers: UNKNOWN as any }), { changes: true, replaces: ["triggers"], deleteBeforeReplace: false });
  for (const change of [{ create: "echo bye" }, { stdin: "b" }, { rerunOn: ["r2"] }, { delete: "true" }, { archiveDigest: "d2" }, { create: UNKNOWN }]) {
    assert.deepEqual(await diff({ ...base, ...change }), { changes: true }, JSON.stringify(change));
  }
  assert.deepEqual(await diff({ ...base, connection: { ...base.connection, port: 2223 } }), { changes: true },
    "a moved node is reached at its new address");
});

test("update runs the update command (else create) when something that re-runs changed, and nothing otherwise", async () => {
  const file = path.join(dir, "runs");
  fs.rmSync(file, { force: true });
  const base = props({ create: `echo create >> ${file}`, update: `echo update >> ${file}`, rerunOn: ["r1"] });
  const r = await create(base);
  assert.equal(r.error, undefined, r.error?.message);
  const id = r.value!.id;
  const rerun = await logged(() => remoteCommandProvider.update!(id, r.value!.outs, { ...base, rerunOn: ["r2"] }));
  assert.equal(rerun.error, undefined, rerun.error?.message);
  assert.equal(rerun.value!.outs.hostKey, hostKey);
  assert.equal(rerun.value!.outs.connection.hostKey, hostKey);
  const still = await logged(() => remoteCommandProvider.update!(id, rerun.value!.outs,
    { ...base, rerunOn: ["r2"], connection: { ...base.connection, dialTimeout: 99 } }));
  assert.equal(still.error, undefined);
  assert.equal(still.value!.outs.connection.hostKey, hostKey, "the recorded key survives an update that runs nothing");
  assert.equal(fs.readFileSync(file, "utf8"), "create\nupdate\n");
  const failing = await logged(() => remoteCommandProvider.update!(id, rerun.value!.outs, { ...base, update: "echo broken >&2; exit 7", rerunOn: ["r3"] }));
  assert.equal(failing.error?.message, `${NODE} update failed with exit code 7 on ${HOST}: broken`);
});

test("a changed delete command (a new drainTimeout) or around is stored without contacting the node; delete then runs the new one", async () => {
  const runs = path.join(dir, "delete-only-runs");
  fs.rmSync(runs, { force: true });
  const base = props({ create: `echo created; echo create >> ${runs}`, delete: `echo old-delete >> ${runs}`, rerunOn: ["r1"], captureStdout: true });
  const r = await create(base);
  assert.equal(r.error, undefined, r.error?.message);
  await new Promise((res) => setTimeout(res, 200)); // sshd's log lines trail the connection
  const before = accepted();
  const news = { ...base, delete: `echo new-delete >> ${runs}`, around: rolling("stored", 3, "true", "true") };
  assert.deepEqual(await remoteCommandProvider.diff!(r.value!.id, r.value!.outs, news), { changes: true }, "the engine is told, so the state gets it");
  const u = await logged(() => remoteCommandProvider.update!(r.value!.id, r.value!.outs, news));
  assert.equal(u.error, undefined, u.error?.message);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(accepted(), before, "no SSH session: nothing ran");
  assert.equal(fs.readFileSync(runs, "utf8"), "create\n");
  const outs = u.value!.outs;
  assert.equal(outs.delete, news.delete);
  assert.deepEqual(outs.around, news.around);
  assert.deepEqual([outs.hostKey, outs.connection.hostKey, outs.stdout], [hostKey, hostKey, "created\n"],
    "the recorded key and the captured stdout survive");
  const d = await logged(() => remoteCommandProvider.delete!(r.value!.id, outs));
  assert.equal(d.error, undefined, d.error?.message);
  assert.equal(fs.readFileSync(runs, "utf8"), "create\nnew-delete\n", "removal runs the delete command stored last");
});

const VIA = "unit-server-0 (rolling unit-agent)";
const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A re-run rolled through `group`: before and after run on the via node (the same sshd, under another name). */
function rolling(group: string, limit: number, before: string, after: string): Around {
  return { connection: { ...props().connection, node: VIA }, before, after, group, limit, timeoutSeconds: 60 };
}
const appendTo = (file: string, line: string) => `echo "${line}" >> ${file}`;
const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");

test("around: before and after run on the via node around a re-run, in order; never on create, nor when nothing re-runs", async () => {
  const log = path.join(dir, "around-order");
  const base = props({
    create: appendTo(log, "create"), update: appendTo(log, "update"), rerunOn: ["r1"],
    around: rolling("order", 1, appendTo(log, "before"), appendTo(log, "after")),
  });
  const r = await create(base);
  assert.equal(r.error, undefined, r.error?.message);
  assert.equal(lines(log), "create\n", "a first run has nothing to drain");
  const u = await logged(() => remoteCommandProvider.update!(r.value!.id, r.value!.outs, { ...base, rerunOn: ["r2"] }));
  assert.equal(u.error, undefined, u.error?.message);
  assert.equal(lines(log), "create\nbefore\nupdate\nafter\n");
  const still = await logged(() => remoteCommandProvider.update!(r.value!.id, u.value!.outs, { ...base, rerunOn: ["r2"], delete: "true" }));
  assert.equal(still.error, undefined, still.error?.message);
  assert.equal(lines(log), "create\nbefore\nupdate\nafter\n", "an update that re-runs nothing rolls nothing");

  // before and after use the via node's connection: pinned to another key there, the roll stops before the step runs.
  const elsewhere = { ...rolling("order-pinned", 1, appendTo(log, "before"), appendTo(log, "after")) };
  elsewhere.connection = { ...elsewhere.connection, hostKey: OTHER_KEY };
  const refused = await logged(() => remoteCommandProvider.update!(r.value!.id, u.value!.outs, { ...base, rerunOn: ["r3"], around: elsewhere }));
  assert.match(refused.error?.message ?? "", new RegExp(`^${escaped(`${VIA} (${HOST}:${PORT}) presented host key ${hostKey}, not the pinned ${OTHER_KEY}`)}`));
  assert.equal(lines(log), "create\nbefore\nupdate\nafter\n");
});

test("around: a failing before leaves the step unrun, a failing after fails the update; both name the via node and the phase", async () => {
  const log = path.join(dir, "around-failures");
  const base = props({ create: "true", update: appendTo(log, "update"), rerunOn: ["r1"] });
  const r = await create(base);
  const noDrain = await logged(() => remoteCommandProvider.update!(r.value!.id, r.value!.outs, {
    ...base, rerunOn: ["r2"], around: rolling("before-fails", 1, "echo 'pods that would not leave: default/guarded-7f9c' >&2; exit 1", "true"),
  }));
  assert.equal(noDrain.error?.message, `${VIA} before update failed with exit code 1 on ${HOST}: pods that would not leave: default/guarded-7f9c`);
  assert.equal(lines(log), "", "the step itself did not run");
  const notBack = await logged(() => remoteCommandProvider.update!(r.value!.id, r.value!.outs, {
    ...base, rerunOn: ["r2"], around: rolling("after-fails", 1, "true", "echo 'node unit-agent did not come back Ready' >&2; exit 3"),
  }));
  assert.equal(notBack.error?.message, `${VIA} after update failed with exit code 3 on ${HOST}: node unit-agent did not come back Ready`);
  assert.equal(lines(log), "update\n");
});

/**
 * Creates `n` steps of one group, then re-runs all of them at once (`spacingMs` apart); each re-run logs when its
 * own command starts and ends. Returns the most that ran at the same time, and what each update returned.
 */
async function rollMany(group: string, limit: number, n: number, spacingMs: number, failing = -1) {
  const log = path.join(dir, `slots-${group}`);
  const steps: { base: RemoteCommandProps; id: string; outs: any }[] = [];
  for (let i = 0; i < n; i++) {
    const update = `echo "start $(date +%s%N) ${i}" >> ${log}; sleep 1.5; echo "end $(date +%s%N) ${i}" >> ${log}`
      + (i === failing ? "; echo broken >&2; exit 7" : "");
    const base = props({ create: "true", update, rerunOn: ["r1"], around: rolling(group, limit, appendTo(log, `before ${i}`), "true") },
      { node: `unit-agent-${i}` });
    const r = await create(base);
    assert.equal(r.error, undefined, r.error?.message);
    steps.push({ base, id: r.value!.id, outs: r.value!.outs });
  }
  const settled = await logged(() => Promise.all(steps.map(async (s, i) => {
    // 0: every update starts in this same tick, as when the provider host dispatches several requests at once.
    if (spacingMs > 0) await new Promise((res) => setTimeout(res, i * spacingMs));
    const hung = new Promise<string>((res) => setTimeout(() => res("still waiting after 40 s"), 40_000).unref());
    return Promise.race([
      remoteCommandProvider.update!(s.id, s.outs, { ...s.base, rerunOn: ["r2"] }).then(() => "ok", (e: Error) => e.message),
      hung,
    ]);
  })));
  let running = 0;
  let most = 0;
  const events = lines(log).split("\n").filter((l) => /^(start|end) /.test(l)).map((l) => l.split(" "))
    .sort((a, b) => (BigInt(a[1]) < BigInt(b[1]) ? -1 : BigInt(a[1]) > BigInt(b[1]) ? 1 : 0));
  for (const [what] of events) {
    running += what === "start" ? 1 : -1;
    most = Math.max(most, running);
  }
  return { most, results: settled.value!, waitingLines: settled.lines.split("\n").filter((l) => l.startsWith("waiting for one of")), log };
}

test("around: at most `limit` re-runs of one group at once, the others wait for a slot", { timeout: 120_000 }, async () => {
  const two = await rollMany("limit-two", 2, 4, 150);
  assert.deepEqual(two.results, ["ok", "ok", "ok", "ok"]);
  assert.equal(two.most, 2, "two at a time: never more, and the limit is used");
  assert.equal(two.waitingLines.length, 2, "the last two waited");
  assert.match(two.waitingLines[0], /^waiting for one of 2 slot\(s\) of limit-two /);
  const one = await rollMany("limit-one", 1, 3, 150);
  assert.deepEqual(one.results, ["ok", "ok", "ok"]);
  assert.equal(one.most, 1, "one at a time");
});

test("around: re-runs that arrive together still take at most `limit` slots", { timeout: 120_000 }, async () => {
  const together = await rollMany("together", 1, 3, 0);
  assert.deepEqual(together.results, ["ok", "ok", "ok"]);
  assert.equal(together.most, 1, "one at a time");
});

test("around: after one re-run of a group failed, those still waiting give up and leave their node as it is", { timeout: 120_000 }, async () => {
  const r = await rollMany("fails", 1, 3, 150, 0);
  const first = `unit-agent-0 update failed with exit code 7 on ${HOST}: broken`;
  assert.deepEqual(r.results, [
    first,
    `unit-agent-1 was left as it is: unit-agent-0 failed its update: ${first}`,
    `unit-agent-2 was left as it is: unit-agent-0 failed its update: ${first}`,
  ]);
  assert.deepEqual(lines(r.log).split("\n").filter((l) => l.startsWith("before")), ["before 0"], "no other node was drained");
});

test("delete without a delete command contacts nobody; stdout is captured only when asked, as a secret output", async () => {
  const d = await logged(() => remoteCommandProvider.delete!("x", props({}, { port: 1 })));
  assert.equal(d.error, undefined, "nothing to undo: no connection attempted (port 1 would refuse it)");
  const r = await create(props({ create: "echo kubeconfig-text", captureStdout: true, logging: "none" }));
  assert.equal(r.value!.outs.stdout, "kubeconfig-text\n");
  assert.equal(r.lines, "");
});

test("the provider survives closure serialization and runs in a fresh process the way the engine's provider host loads it", async () => {
  const provider = remoteCommandProvider;
  const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  assert.equal(sf.containsSecrets, false);
  assert.match(sf.text, /^exports\.handler = /);
  assert.doesNotMatch(sf.text, /@pulumi\/aws|BEGIN [A-Z ]*PRIVATE KEY/);
  const file = path.join(dir, "serialized-run");
  const inputs = props({ create: `echo from-the-host-process | tee ${file}`, captureStdout: true });
  const [check, created] = runInProviderHost(sf.text, [["check", {}, inputs], ["create", inputs]], 60_000);
  assert.deepEqual(check.result.failures, []);
  assert.equal(created.error, undefined, created.error);
  assert.equal(created.result.outs.stdout, "from-the-host-process\n");
  assert.equal(created.result.outs.hostKey, hostKey);
  assert.equal(fs.readFileSync(file, "utf8"), "from-the-host-process\n");
});
