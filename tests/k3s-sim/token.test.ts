// `k3s token rotate` on a simulated cluster, with k3s's semantics: the rotating server rewrites its passwd and
// token file and re-encrypts the bootstrap data; every running server keeps authenticating with the passwd it
// loaded at start (k3s builds that authenticator once), so the old token stops working only as the servers
// restart with the new one; a server restarted with the old token is refused.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { request } from "./src/http-client";
import { formatToken, parseToken } from "./src/tokens";
import { dataFile, k3s, readToken, restartSim, Sim, startHa, startSim, waitFor } from "./sim-harness";

const sims: Sim[] = [];
after(async () => { await Promise.all(sims.map((s) => s.stop())); });
async function start(...a: Parameters<typeof startSim>): Promise<Sim> { const s = await startSim(...a); sims.push(s); return s; }

const WARNING = "\x1b[33mWARNING\x1b[0m: Recommended to keep a record of the old token. If restoring from a snapshot, you must use the token associated with that snapshot.\n";
const ROTATED = "Token rotated, restart k3s nodes with new token\n";

async function status(s: Sim, user: string, password: string, p = "/v1-k3s/config"): Promise<number> {
  return (await request(`${s.url}${p}`, { ca: fs.readFileSync(dataFile(s, "server/tls/server-ca.crt")), basic: { user, password } })).status;
}

const up = (s: Sim) => waitFor(`${s.ip} up`, () => s.output().includes("k3s is up and running") || undefined, 15000);

test("rotate: k3s's lines; server/token rewritten 0600 with the same CA hash; old token valid until the servers restart, then 401 everywhere and the new one 200", async () => {
  const ha = await startHa(["tk-s1", "tk-s2"]);
  sims.push(...ha.servers);
  let [s1, s2] = ha.servers;
  const old = parseToken(ha.token);
  const agent = await start(["agent", "--node-name", "tk-a1"], { env: { K3S_URL: s2.url, K3S_TOKEN: ha.token } });
  await waitFor("tk-a1 joined", () => agent.output().includes("k3s agent is up and running") || undefined);

  const r = await k3s(s1, ["token", "rotate", "--server", s1.url, "--token", ha.token, "--new-token", "rotated-secret-1"]);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, WARNING + ROTATED, ""]);
  const file = dataFile(s1, "server/token");
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.readFileSync(file, "utf8"), `${formatToken(old.caHash as string, "server", "rotated-secret-1")}\n`);
  assert.equal(readToken(s2), ha.token, "the other servers' token files change when they restart with the new token");
  for (const s of [s1, s2]) {
    assert.equal(await status(s, "node", old.password), 200, `${s.ip}: still running with the passwd it loaded`);
    assert.equal(await status(s, "server", "rotated-secret-1"), 401, `${s.ip}: not restarted yet`);
  }

  const stale = await restartSim(s2, { env: { K3S_TOKEN: ha.token, K3S_URL: s1.url } });
  sims.push(stale);
  assert.equal(await stale.exited, 1);
  await waitFor("the refusal in its log", () => /level=fatal msg="starting kubernetes: preparing server: failed to bootstrap cluster data: failed to reconcile with local datastore: bootstrap data already found and encrypted with different token"/.test(stale.output()) || undefined, 2000);

  const newFull = readToken(s1) as string;
  s2 = await start(["server", "--node-name", "tk-s2"], { root: s2.root, ip: s2.ip, env: { K3S_TOKEN: newFull, K3S_URL: s1.url } });
  s1 = await restartSim(s1);
  sims.push(s1);
  await Promise.all([up(s1), up(s2)]);
  for (const s of [s1, s2]) {
    assert.equal(await status(s, "node", old.password), 401, s.ip);
    assert.equal(await status(s, "server", old.password, "/v1-k3s/server-bootstrap"), 401, s.ip);
    assert.equal(await status(s, "node", "rotated-secret-1"), 200, s.ip);
    assert.equal(await status(s, "server", "rotated-secret-1", "/v1-k3s/encrypt/status"), 200, s.ip);
  }
  assert.equal(readToken(s2), newFull);

  const oldAgent = await restartSim(agent);
  sims.push(oldAgent);
  await waitFor("the old token refused", () => (oldAgent.output().match(/401 Unauthorized/g) ?? []).length >= 2 || undefined);
  const newAgent = await restartSim(oldAgent, { env: { K3S_URL: s2.url, K3S_TOKEN: newFull } });
  sims.push(newAgent);
  await waitFor("tk-a1 with the new token", () => newAgent.output().includes("k3s agent is up and running") || undefined);
  for (const s of [...sims]) {
    assert.ok(!s.output().includes("rotated-secret-1") && !s.output().includes(old.password), "no password in any log");
  }
});

test("rotate with a separate agent token: the agent token is left alone; the node user loses only the old server password", async () => {
  const s = await start(["server", "--node-name", "tk-at", "--agent-token", "agent-secret-2"], { env: { K3S_TOKEN: "server-secret-2" } });
  const before = await waitFor("token", () => readToken(s));
  await up(s);
  const agentFile = fs.readFileSync(dataFile(s, "server/agent-token"), "utf8");
  // --token comes from K3S_TOKEN, as k3s binds the flag to it; --new-token has no variable.
  const r = await k3s(s, ["token", "rotate", "-s", s.url, "--new-token", "server-secret-3"], { K3S_TOKEN: before });
  assert.deepEqual([r.code, r.stdout], [0, WARNING + ROTATED], r.stderr);
  assert.equal(fs.readFileSync(dataFile(s, "server/agent-token"), "utf8"), agentFile);
  const again = await restartSim(s, { env: { K3S_TOKEN: "server-secret-3" } });
  sims.push(again);
  await up(again);
  assert.equal(await status(again, "node", "agent-secret-2"), 200);
  assert.equal(await status(again, "node", "server-secret-3"), 200);
  assert.equal(await status(again, "node", "server-secret-2"), 401);
  assert.equal(fs.readFileSync(dataFile(again, "server/agent-token"), "utf8"), agentFile);
});

test("rotate failures: a wrong password is not authorized, another CA's hash and an http URL are refused; without --token the server's token file is used and a new password generated", async () => {
  const s = await start(["server", "--node-name", "tk-f"]);
  const tok = parseToken(await waitFor("token", () => readToken(s)));
  await up(s);
  const wrong = await k3s(s, ["token", "rotate", "--server", s.url, "-t", formatToken(tok.caHash as string, "server", "f".repeat(32))]);
  assert.deepEqual([wrong.code, wrong.stdout], [1, WARNING]);
  assert.match(wrong.stderr, /^time="[^"]+" level=fatal msg="not authorized"\n$/);
  const foreign = await k3s(s, ["token", "rotate", "--server", s.url, "--token", formatToken("ab".repeat(32), "server", tok.password)]);
  assert.equal(foreign.code, 1);
  assert.match(foreign.stderr, new RegExp(`level=fatal msg="token CA hash does not match the Cluster CA certificate hash: (ab){32} != ${tok.caHash}"`));
  const http = await k3s(s, ["token", "rotate", "--server", s.url.replace("https:", "http:")]);
  assert.equal(http.code, 1);
  assert.match(http.stderr, /level=fatal msg="only https:\/\/ URLs are supported, invalid scheme: http:\/\//);
  assert.equal(readToken(s), formatToken(tok.caHash as string, "server", tok.password), "nothing rotated so far");

  const r = await k3s(s, ["token", "rotate", "--server", s.url]);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, WARNING + ROTATED, ""]);
  const rotated = parseToken(readToken(s) as string);
  assert.equal(rotated.caHash, tok.caHash);
  assert.match(rotated.password, /^[0-9a-f]{32}$/);
  assert.notEqual(rotated.password, tok.password);
});
