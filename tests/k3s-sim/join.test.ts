import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { caHashOf, parseToken, formatToken } from "./src/tokens";
import { dataFile, FAST, kubectl, readToken, Sim, startSim, waitFor } from "./sim-harness";

const sims: Sim[] = [];
after(async () => { await Promise.all(sims.map((s) => s.stop())); });
async function start(...a: Parameters<typeof startSim>): Promise<Sim> { const s = await startSim(...a); sims.push(s); return s; }
const SECRET_RE = /K10[0-9a-f]{64}::/;

async function nodeNames(server: Sim): Promise<string[]> {
  const r = await kubectl(server, ["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
  return r.stdout.split(" ").filter((x) => x !== "");
}

test("agents join with the token; a wrong CA or a wrong password never registers", async () => {
  const server = await start(["server", "--node-name", "sim-srv"]);
  const token = await waitFor("server/token", () => readToken(server));
  const { password, caHash } = parseToken(token);
  const good = await start(["agent", "--node-name", "sim-agent-ok"], { env: { K3S_URL: server.url, K3S_TOKEN: token } });
  const wrongCa = await start(["agent", "--node-name", "sim-agent-ca"],
    { env: { K3S_URL: server.url, K3S_TOKEN: formatToken("0".repeat(64), "node", password) } });
  const wrongPw = await start(["agent", "--node-name", "sim-agent-pw"],
    { env: { K3S_URL: server.url, K3S_TOKEN: formatToken(caHash as string, "node", "f".repeat(32)) } });
  await waitFor("sim-agent-ok Ready", async () => {
    const r = await kubectl(server, ["get", "node", "sim-agent-ok", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`]);
    return r.stdout === "True" || undefined;
  });
  assert.match(good.output(), /k3s agent is up and running/);
  await waitFor("wrong-CA agent's retries", () => (wrongCa.output().match(/token CA hash does not match/g) ?? []).length >= 2 || undefined);
  assert.match(wrongCa.output(), new RegExp(`token CA hash does not match the Cluster CA certificate hash: ${"0".repeat(64)} != ${caHash}`));
  await waitFor("wrong-password agent's retries", () => (wrongPw.output().match(/401 Unauthorized/g) ?? []).length >= 2 || undefined);
  assert.deepEqual((await nodeNames(server)).sort(), ["sim-agent-ok", "sim-srv"]);
  assert.equal(wrongCa.proc.exitCode, null, "a bad-token agent keeps retrying");
  const table = await kubectl(server, ["get", "nodes"]);
  assert.match(table.stdout, /\nsim-agent-ok\s+Ready\s+<none>\s+/);
  for (const s of [server, good, wrongCa, wrongPw]) {
    assert.doesNotMatch(s.output(), SECRET_RE);
    assert.ok(!s.output().includes(password) && !s.output().includes("f".repeat(32)), "no password in logs");
  }
});

test("HA: a second server shares CA and token; two simultaneous joins → one fails with too many learners", async () => {
  const first = await start(["server", "--cluster-init", "--node-name", "sim-ha-1"], { knobs: { ...FAST, etcdJoinDelay: 1 } });
  const token = await waitFor("server/token", () => readToken(first));
  const knobs = { ...FAST, etcdJoinDelay: 1 };
  const env = { K3S_TOKEN: token, K3S_URL: first.url };
  const [a, b] = await Promise.all([
    start(["server", "--node-name", "sim-ha-2"], { env, knobs }),
    start(["server", "--node-name", "sim-ha-3"], { env, knobs }),
  ]);
  const loser = await Promise.race([a.exited.then(() => a), b.exited.then(() => b)]);
  const winner = loser === a ? b : a;
  assert.notEqual(await loser.exited, 0);
  assert.match(loser.output(), /etcdserver: too many learner members in cluster/);
  assert.equal(await waitFor("joined server's token", () => readToken(winner)), token);
  assert.equal(fs.readFileSync(dataFile(winner, "server/tls/server-ca.crt"), "utf8"), fs.readFileSync(dataFile(first, "server/tls/server-ca.crt"), "utf8"));
  // Restarted by systemd in real life: the retry joins once the learner is promoted.
  const retry = await start(["server", "--node-name", loser === a ? "sim-ha-2" : "sim-ha-3"], { env, knobs, root: loser.root, ip: loser.ip });
  await waitFor("3 servers in the node list", async () => ((await nodeNames(retry)).length === 3 ? true : undefined), 15000);
  assert.deepEqual((await nodeNames(first)).sort(), ["sim-ha-1", "sim-ha-2", "sim-ha-3"]);
  assert.match(first.output(), /Adding etcd learner/);
  const pw = parseToken(token).password;
  for (const s of [first, a, b, retry]) {
    assert.doesNotMatch(s.output(), SECRET_RE);
    assert.ok(!s.output().includes(pw), "no password in logs");
  }
});

test("faults: exitAtStart, noToken, caMismatch, wrongPassword, malformedToken, apiNeverReady, nodeNeverReady", async () => {
  const exit = await start(["server"], { knobs: { ...FAST, faults: { exitAtStart: 7 } } });
  assert.equal(await exit.exited, 7);

  const noToken = await start(["server", "--node-name", "sim-f1"], { knobs: { ...FAST, faults: { noToken: true } } });
  await waitFor("API up", () => noToken.output().includes("k3s is up and running") || undefined);
  assert.equal(fs.existsSync(dataFile(noToken, "server/token")), false);

  const mismatch = await start(["server"], { knobs: { ...FAST, faults: { caMismatch: true } } });
  const mt = parseToken(await waitFor("token", () => readToken(mismatch)));
  const realHash = caHashOf(fs.readFileSync(dataFile(mismatch, "server/tls/server-ca.crt")));
  assert.notEqual(mt.caHash, realHash);
  const agent = await start(["agent", "--node-name", "sim-f-agent"], { env: { K3S_URL: mismatch.url, K3S_TOKEN: readToken(mismatch) as string } });
  await waitFor("mismatch error", () => agent.output().includes("token CA hash does not match") || undefined);

  const wrongPw = await start(["server"], { knobs: { ...FAST, faults: { wrongPassword: true } } });
  const wt = await waitFor("token", () => readToken(wrongPw));
  const agent2 = await start(["agent", "--node-name", "sim-f-agent2"], { env: { K3S_URL: wrongPw.url, K3S_TOKEN: wt } });
  await waitFor("401", () => agent2.output().includes("401 Unauthorized") || undefined);

  const malformed = await start(["server"], { knobs: { ...FAST, faults: { malformedToken: "K10abc::server:x" } } });
  await waitFor("token", () => readToken(malformed));
  assert.equal(fs.readFileSync(dataFile(malformed, "server/token"), "utf8"), "K10abc::server:x");
  assert.throws(() => parseToken("K10abc::server:x"), /invalid token CA hash length/);

  const never = await start(["server", "--node-name", "sim-f2"], { knobs: { ...FAST, faults: { apiNeverReady: true } } });
  await waitFor("token", () => readToken(never));
  await new Promise((r) => setTimeout(r, 1000));
  const r = await kubectl(never, ["get", "nodes"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /apiserver not ready/);
  assert.doesNotMatch(never.output(), /up and running/);

  const notReady = await start(["server", "--node-name", "sim-f3"], { knobs: { ...FAST, faults: { nodeNeverReady: true } } });
  await waitFor("API up", () => notReady.output().includes("k3s is up and running") || undefined);
  await new Promise((res) => setTimeout(res, 600));
  const st = await kubectl(notReady, ["get", "node", "sim-f3", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`]);
  assert.equal(st.stdout, "False");
});
