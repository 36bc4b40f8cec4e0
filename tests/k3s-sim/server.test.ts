import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { request } from "./src/http-client";
import { caHashOf, parseToken } from "./src/tokens";
import { dataFile, FAST, kubectl, readToken, run, Sim, startSim, waitFor } from "./sim-harness";

const sims: Sim[] = [];
after(async () => { await Promise.all(sims.map((s) => s.stop())); });
async function start(...a: Parameters<typeof startSim>): Promise<Sim> { const s = await startSim(...a); sims.push(s); return s; }

const SECRET_RE = /K10[0-9a-f]{64}::|server:[0-9a-f]{32}|node:[0-9a-f]{32}/;

test("readiness order, file layout, modes, token grammar and status codes", async () => {
  const knobs = { ...FAST, tokenDelay: 0.6, apiReadyDelay: 1.5 };
  const sim = await start(["server", "--node-name", "sim-s1", "--tls-san", "k3s.example.test"], { knobs });
  const cacerts = await waitFor("/cacerts", () => request(`${sim.url}/cacerts`).then((r) => (r.status === 200 ? r.body : undefined), () => undefined));
  // Served before the token file exists.
  assert.equal(readToken(sim), undefined, "token file must not exist before tokenDelay");
  assert.equal((await request(`${sim.url}/ping`)).body.toString(), "pong");
  const noCreds = await request(`${sim.url}/v1-k3s/config`);
  assert.equal(noCreds.status, 403);
  assert.equal(JSON.parse(noCreds.body.toString()).message, "forbidden");
  assert.equal((await request(`${sim.url}/readyz`)).status, 503, "apiserver paths answer 503 while starting");

  const token = await waitFor("server/token", () => readToken(sim));
  assert.equal(token.length, 108);
  assert.match(token, /^K10[0-9a-f]{64}::server:[0-9a-f]{32}$/);
  const parsed = parseToken(token);
  assert.equal(parsed.caHash, caHashOf(cacerts), "hash = sha256 of the /cacerts bytes");
  assert.equal(cacerts.toString(), fs.readFileSync(dataFile(sim, "server/tls/server-ca.crt"), "utf8"));
  const basic = { user: "node", password: parsed.password };
  const ok = await request(`${sim.url}/v1-k3s/config`, { ca: cacerts, basic });
  assert.equal(ok.status, 200);
  const early = await request(`${sim.url}/v1-k3s/readyz`, { ca: cacerts, basic });
  assert.equal(early.status, 503);
  assert.equal(JSON.parse(early.body.toString()).message, "runtime core not ready");
  const bad = await request(`${sim.url}/v1-k3s/config`, { ca: cacerts, basic: { user: "node", password: "0".repeat(32) } });
  assert.equal(bad.status, 401);
  assert.equal(JSON.parse(bad.body.toString()).message, "not authorized");
  const wrongGroup = await request(`${sim.url}/v1-k3s/server-bootstrap`, { ca: cacerts, basic });
  assert.equal(wrongGroup.status, 403);
  const probe = await request(`${sim.url}/v1-k3s/encrypt/status`, { ca: cacerts, basic: { user: "server", password: parsed.password } });
  assert.equal(probe.status, 200);

  const serverDir = dataFile(sim, "server");
  assert.equal(fs.statSync(serverDir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(serverDir, "token")).mode & 0o777, 0o600);
  assert.equal(fs.readlinkSync(path.join(serverDir, "node-token")), path.join(serverDir, "token"));
  assert.equal(fs.readlinkSync(path.join(serverDir, "agent-token")), path.join(serverDir, "token"));
  const kubeconfig = path.join(sim.root, "etc/rancher/k3s/k3s.yaml");
  assert.equal(fs.statSync(kubeconfig).mode & 0o777, 0o600);

  await waitFor("v1-k3s/readyz 200", async () => (await request(`${sim.url}/v1-k3s/readyz`, { ca: cacerts, basic })).status === 200 || undefined);
  assert.equal((await request(`${sim.url}/version`, { ca: cacerts })).status, 401, "no client certificate → 401");
  const sans = await run("openssl", ["x509", "-noout", "-ext", "subjectAltName", "-in", dataFile(sim, "server/tls/serving-kube-apiserver.crt")]);
  for (const san of ["IP Address:127.0.0.1", `IP Address:${sim.ip}`, "DNS:localhost", "DNS:sim-s1", "DNS:k3s.example.test"]) assert.ok(sans.stdout.includes(san), san);

  const ready = await waitFor("node Ready", async () => {
    const r = await kubectl(sim, ["get", "node", "sim-s1", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`]);
    return r.stdout === "True" ? r : undefined;
  });
  assert.equal(ready.code, 0);
  const table = await kubectl(sim, ["get", "nodes"]);
  assert.match(table.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\n/);
  assert.match(table.stdout, /\nsim-s1\s+Ready\s+control-plane,etcd\s+\d+s\s+v1\.34\.3\+k3s1\n/);
  const missing = await kubectl(sim, ["get", "node", "nope"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^Error from server \(NotFound\): nodes "nope" not found/);
  const json = JSON.parse((await kubectl(sim, ["get", "nodes", "-o", "json"])).stdout);
  assert.equal(json.items[0].metadata.name, "sim-s1");
  // A real kubectl accepts the Table answer.
  const real = await run("kubectl", ["--kubeconfig", kubeconfig, "get", "nodes"]);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nsim-s1\s+Ready\s+control-plane,etcd/);
  assert.doesNotMatch(sim.output(), SECRET_RE);
  assert.doesNotMatch(sim.output(), new RegExp(parsed.password));
  assert.match(sim.output(), /Server node token is available at \/var\/lib\/rancher\/k3s\/server\/token/);
  assert.match(sim.output(), /k3s is up and running/);
});

test("a user-supplied token and agent-token are honoured; write-kubeconfig-mode applies", async () => {
  const pw = "my-cluster-secret-1";
  const sim = await start(["server", "--node-name", "sim-s2", "--agent-token", "agent-secret-2", "--write-kubeconfig-mode", "0644"],
    { env: { K3S_TOKEN: pw } });
  const token = await waitFor("server/token", () => readToken(sim));
  assert.equal(parseToken(token).password, pw);
  assert.equal(parseToken(token).username, "server");
  const agentFile = dataFile(sim, "server/agent-token");
  assert.equal(fs.lstatSync(agentFile).isSymbolicLink(), false);
  assert.equal(fs.statSync(agentFile).mode & 0o777, 0o600);
  assert.match(fs.readFileSync(agentFile, "utf8"), /^K10[0-9a-f]{64}::node:agent-secret-2\n$/);
  assert.equal(fs.statSync(path.join(sim.root, "etc/rancher/k3s/k3s.yaml")).mode & 0o777, 0o644);
  assert.doesNotMatch(sim.output(), /my-cluster-secret-1|agent-secret-2/);
});

test("config.yaml and drop-ins are read; a full token with another CA's hash is refused", async () => {
  const sim = await startSim(["server"], {});
  sims.push(sim);
  const token = await waitFor("server/token", () => readToken(sim));
  await sim.stop();
  // Same data dir, same CA: a restart with the full token keeps it.
  const cfgDir = path.join(sim.root, "etc/rancher/k3s");
  fs.mkdirSync(`${cfgDir}/config.yaml.d`, { recursive: true });
  fs.writeFileSync(`${cfgDir}/config.yaml`, `# k3s config\ntoken: "${token}"\nnode-name: sim-cfg\ntls-san:\n  - a.example.test\n`);
  fs.writeFileSync(`${cfgDir}/config.yaml.d/10-more.yaml`, "tls-san+: [b.example.test]\nunknown-key: tolerated\n");
  fs.rmSync(dataFile(sim, "server/token"));
  const again = await start(["server"], { root: sim.root, ip: sim.ip });
  assert.equal(await waitFor("server/token", () => readToken(again)), token);
  const sans = await run("openssl", ["x509", "-noout", "-ext", "subjectAltName", "-in", dataFile(again, "server/tls/serving-kube-apiserver.crt")]);
  assert.match(sans.stdout, /DNS:sim-cfg/);
  assert.match(sans.stdout, /DNS:a\.example\.test/);
  assert.match(sans.stdout, /DNS:b\.example\.test/);
  await again.stop();

  const foreign = `K10${"ab".repeat(32)}::server:${"1".repeat(32)}`;
  const refused = await start(["server", "--token", foreign], { root: sim.root, ip: sim.ip });
  const code = await refused.exited;
  assert.notEqual(code, 0);
  assert.match(refused.output(), /token CA hash does not match the Cluster CA certificate hash: a{0}(ab){32} != [0-9a-f]{64}/);
});
