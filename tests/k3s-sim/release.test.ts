// One simulator build, one release per name: the mirror stamps the release into the file it serves, and the
// stamped binary reports that release as a real k3s binary reports its own (--version, /version, the Node).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildSimulator } from "./build";
import { binaryDigest, DEFAULT_RELEASE, serveMirror } from "./mirror";
import { FAST, k3s, kubectl, newRoot, readToken, restartSim, run, Sim, startSim, waitFor, waitNodeReady } from "./sim-harness";

const sims: Sim[] = [];
const mirror = serveMirror("127.0.0.1");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-sim-release-"));
after(async () => {
  await Promise.all(sims.map((s) => s.stop()));
  (await mirror).close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const NEXT = "v1.35.0+k3s1";
const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

async function download(release: string): Promise<{ file: string; body: Buffer }> {
  const res = await fetch((await mirror).url(release));
  assert.equal(res.status, 200);
  const body = Buffer.from(await res.arrayBuffer());
  const file = path.join(tmp, `k3s-${release}`);
  fs.writeFileSync(file, body, { mode: 0o755 });
  return { file, body };
}

test("the mirror serves each release name: the default as the build itself, any other stamped, each with its own sha256", async () => {
  const m = await mirror;
  const build = fs.readFileSync(await buildSimulator());
  const def = await download(DEFAULT_RELEASE);
  assert.ok(def.body.equals(build), "the default release is dist/k3s byte for byte");
  assert.equal(m.sha256, sha256(build));
  assert.equal(m.digest(), m.sha256);
  assert.equal(await binaryDigest(), m.sha256);
  const bare = Buffer.from(await (await fetch(m.url().replace(`/${encodeURIComponent(DEFAULT_RELEASE)}/k3s`, "/k3s"))).arrayBuffer());
  assert.ok(bare.equals(build), "/k3s serves the default release");

  const next = await download(NEXT);
  assert.notEqual(sha256(next.body), m.sha256);
  assert.equal(m.digest(NEXT), sha256(next.body));
  assert.equal(await binaryDigest(NEXT), sha256(next.body));
  assert.equal(next.body.length - build.length, `globalThis.K3S_SIM_RELEASE = "${NEXT}";\n`.length, "one line added, nothing else");
  const head = await fetch(m.url(NEXT), { method: "HEAD" });
  assert.equal(head.headers.get("content-length"), String(next.body.length), "Puppet's HEAD sees the stamped size");
  assert.equal((await fetch(m.url(NEXT).replace("/k3s", "/k3s-airgap"))).status, 404);

  const v = await run(next.file, ["--version"]);
  assert.deepEqual([v.code, v.stderr], [0, ""]);
  assert.match(v.stdout, /^k3s version v1\.35\.0\+k3s1 \([0-9a-f]{8}\)\ngo version go1\.25\.\d+\n$/);
  const d = await run(def.file, ["--version"]);
  assert.match(d.stdout, /^k3s version v1\.34\.3\+k3s1 \([0-9a-f]{8}\)\ngo version go1\.24\.\d+\n$/);
  assert.notEqual(v.stdout.slice(0, 40), d.stdout.slice(0, 40));
  // The release is the binary's: a version knob only speaks for the unstamped build.
  const root = newRoot({ ...FAST, version: "v1.33.7+k3s1" });
  assert.match((await run(next.file, ["--version"], { K3S_SIM_ROOT: root })).stdout, /^k3s version v1\.35\.0\+k3s1 /);
  assert.match((await run(def.file, ["--version"], { K3S_SIM_ROOT: root })).stdout, /^k3s version v1\.33\.7\+k3s1 /);
});

test("an upgraded node reports its new release: kubeletVersion, the VERSION column and /version, one node at a time", async () => {
  const def = await download(DEFAULT_RELEASE);
  const next = await download(NEXT);
  let server = await startSim(["server", "--node-name", "rl-s1"], { bin: def.file });
  sims.push(server);
  const token = await waitFor("token", () => readToken(server));
  let agent = await startSim(["agent", "--node-name", "rl-a1"], { bin: def.file, env: { K3S_URL: server.url, K3S_TOKEN: token } });
  sims.push(agent);
  await waitNodeReady(server, "rl-a1");
  const version = async (node: string) =>
    (await kubectl(server, ["get", "node", node, "-o", "jsonpath={.status.nodeInfo.kubeletVersion}"])).stdout;
  assert.deepEqual([await version("rl-s1"), await version("rl-a1")], [DEFAULT_RELEASE, DEFAULT_RELEASE]);

  agent = await restartSim(agent, { bin: next.file });
  sims.push(agent);
  await waitFor("rl-a1 on the new release", async () => ((await version("rl-a1")) === NEXT ? true : undefined));
  assert.equal(await version("rl-s1"), DEFAULT_RELEASE, "only the restarted node changed");
  assert.match(agent.output(), /Starting k3s agent v1\.35\.0\+k3s1 \([0-9a-f]{8}\)/);
  const table = (await kubectl(server, ["get", "nodes"])).stdout;
  assert.match(table, /\nrl-a1\s+\S+\s+<none>\s+\S+\s+v1\.35\.0\+k3s1\n/);
  assert.match(table, /\nrl-s1\s+\S+\s+control-plane,etcd\s+\S+\s+v1\.34\.3\+k3s1\n/);

  server = await restartSim(server, { bin: next.file });
  sims.push(server);
  await waitFor("rl-s1 on the new release", async () => ((await version("rl-s1")) === NEXT ? true : undefined), 10000);
  const v = JSON.parse((await k3s(server, ["kubectl", "get", "--raw", "/version"])).stdout) as { gitVersion: string; minor: string };
  assert.deepEqual([v.gitVersion, v.minor], [NEXT, "35"]);
  assert.match((await kubectl(server, ["get", "nodes"])).stdout, /\nrl-s1\s+\S+\s+control-plane,etcd\s+\S+\s+v1\.35\.0\+k3s1\n/);
});
