// Day-two node operations on a simulated cluster: deleting a Node, cordon/uncordon, drain with its
// eviction of pods, and the undrainable-pod fault, checked against the wording of a real kubectl.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { FAST, k3s, kubectl, nodeNames, restartSim, run, Sim, startHa, startSim, waitFor, waitNodeReady } from "./sim-harness";

const sims: Sim[] = [];
after(async () => { await Promise.all(sims.map((s) => s.stop())); });
async function start(...a: Parameters<typeof startSim>): Promise<Sim> { const s = await startSim(...a); sims.push(s); return s; }

let s1: Sim;
let s2: Sim;
let guarded: Sim;   // an agent whose node holds a pod that no eviction may remove
let plain: Sim;     // an agent with nothing special
let token: string;

interface PodRow { namespace: string; name: string; ready: string; status: string; node: string; }

async function pods(server: Sim): Promise<PodRow[]> {
  const r = await kubectl(server, ["get", "pods", "-A", "-o", "wide"]);
  assert.equal(r.code, 0, r.stderr);
  const [header, ...rows] = r.stdout.trimEnd().split("\n");
  assert.match(header, /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/);
  return rows.map((l) => {
    const c = l.split(/\s+/);
    return { namespace: c[0], name: c[1], ready: c[2], status: c[3], node: c[7] };
  });
}

const lines = (s: string) => s.split("\n").filter((l) => l !== "");

before(async () => {
  const ha = await startHa(["nd-s1", "nd-s2"]);
  sims.push(...ha.servers);
  [s1, s2] = ha.servers;
  token = ha.token;
  guarded = await start(["agent", "--node-name", "nd-guarded"], {
    knobs: { ...FAST, faults: { undrainablePod: true } }, env: { K3S_URL: s1.url, K3S_TOKEN: token },
  });
  plain = await start(["agent", "--node-name", "nd-plain"], { env: { K3S_URL: s2.url, K3S_TOKEN: token } });
  for (const n of ["nd-s1", "nd-s2", "nd-guarded", "nd-plain"]) await waitNodeReady(s1, n);
});

test("get pods -A -o wide: k3s's packaged pods on the first server, one svclb pod per node, the fault's pod on its agent", async () => {
  const rows = await pods(s2);
  for (const app of ["coredns", "local-path-provisioner", "metrics-server", "traefik"]) {
    const p = rows.filter((r) => r.name.startsWith(`${app}-`));
    assert.equal(p.length, 1, app);
    assert.deepEqual([p[0].namespace, p[0].ready, p[0].status, p[0].node], ["kube-system", "1/1", "Running", "nd-s1"]);
    assert.match(p[0].name, new RegExp(`^${app}-[a-z0-9]{10}-[a-z0-9]{5}$`));
  }
  const svclb = rows.filter((r) => r.name.startsWith("svclb-traefik-"));
  assert.deepEqual(svclb.map((r) => r.node).sort(), ["nd-guarded", "nd-plain", "nd-s1", "nd-s2"]);
  const g = rows.filter((r) => r.namespace === "default");
  assert.deepEqual(g.map((r) => [r.node, r.status]), [["nd-guarded", "Running"]]);
  assert.match(g[0].name, /^guarded-[a-z0-9]{10}-[a-z0-9]{5}$/);
  const byNode = await kubectl(s1, ["get", "pods", "-A", "--field-selector", "spec.nodeName=nd-plain", "-o", "name"]);
  assert.deepEqual(lines(byNode.stdout), [`pod/${svclb.find((r) => r.node === "nd-plain")?.name}`]);
  const none = await kubectl(s1, ["get", "pods", "-n", "nothing-here"]);
  assert.deepEqual([none.code, none.stdout, none.stderr], [0, "", "No resources found in nothing-here namespace.\n"]);
});

test("cordon and uncordon: kubectl's lines, spec.unschedulable, STATUS Ready,SchedulingDisabled; a restarted kubelet keeps it", async () => {
  const c = await kubectl(s1, ["cordon", "nd-plain"]);
  assert.deepEqual([c.code, c.stdout, c.stderr], [0, "node/nd-plain cordoned\n", ""]);
  assert.equal((await kubectl(s2, ["cordon", "nd-plain"])).stdout, "node/nd-plain already cordoned\n");
  assert.equal((await kubectl(s2, ["get", "node", "nd-plain", "-o", "jsonpath={.spec.unschedulable}"])).stdout, "true");
  assert.match((await kubectl(s2, ["get", "nodes"])).stdout, /\nnd-plain\s+Ready,SchedulingDisabled\s+<none>\s+/);
  plain = await restartSim(plain);
  sims.push(plain);
  await waitFor("nd-plain re-registered", () => (plain.output().match(/k3s agent is up and running/g) ?? []).length === 1 || undefined);
  await waitNodeReady(s1, "nd-plain");
  assert.equal((await kubectl(s1, ["get", "node", "nd-plain", "-o", "jsonpath={.spec.unschedulable}"])).stdout, "true",
    "a kubelet that registers again finds its Node and leaves spec.unschedulable alone");
  const u = await kubectl(s2, ["uncordon", "nd-plain"]);
  assert.deepEqual([u.code, u.stdout], [0, "node/nd-plain uncordoned\n"]);
  assert.equal((await kubectl(s1, ["uncordon", "nd-plain"])).stdout, "node/nd-plain already uncordoned\n");
  assert.equal((await kubectl(s1, ["get", "node", "nd-plain", "-o", "jsonpath={.spec.unschedulable}"])).stdout, "");
  const missing = await kubectl(s1, ["cordon", "nd-nope"]);
  assert.deepEqual([missing.code, missing.stdout, missing.stderr], [1, "", 'Error from server (NotFound): nodes "nd-nope" not found\n']);
});

test("drain of an undrainable pod: evicts the rest, retries every 5 s, fails after --timeout naming the pod, exit 1; a real kubectl says the same", async () => {
  const [gpod] = (await pods(s1)).filter((r) => r.namespace === "default");
  const svclb = (await pods(s1)).find((r) => r.node === "nd-guarded" && r.name.startsWith("svclb-"))?.name;
  const t0 = Date.now();
  const r = await kubectl(s1, ["drain", "nd-guarded", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2s"]);
  const took = Date.now() - t0;
  assert.equal(r.code, 1);
  assert.deepEqual(lines(r.stdout), ["node/nd-guarded cordoned", `evicting pod default/${gpod.name}`, `evicting pod default/${gpod.name}`]);
  assert.deepEqual(lines(r.stderr), [
    `Warning: ignoring DaemonSet-managed Pods: kube-system/${svclb}`,
    `error when evicting pods/"${gpod.name}" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.`,
    `There are pending pods in node "nd-guarded" when an error occurred: error when evicting pods/"${gpod.name}" -n "default": global timeout reached: 2s`,
    `pod/${gpod.name}`,
    `error: unable to drain node "nd-guarded" due to error: error when evicting pods/"${gpod.name}" -n "default": global timeout reached: 2s, continuing command...`,
    "There are pending nodes to be drained:",
    " nd-guarded",
    `error when evicting pods/"${gpod.name}" -n "default": global timeout reached: 2s`,
  ]);
  // kubectl sleeps its full retry delay before it notices the deadline.
  assert.ok(took >= 5000 && took < 12000, `took ${took} ms`);
  assert.deepEqual((await pods(s2)).filter((x) => x.namespace === "default").map((x) => [x.name, x.node]), [[gpod.name, "nd-guarded"]]);

  const kc = path.join(s1.root, "etc/rancher/k3s/k3s.yaml");
  const real = await run("kubectl", ["--kubeconfig", kc, "drain", "nd-guarded", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2s"]);
  assert.equal(real.code, 1, real.stderr);
  assert.deepEqual(lines(real.stdout), ["node/nd-guarded already cordoned", ...lines(r.stdout).slice(1)]);
  assert.deepEqual(lines(real.stderr), lines(r.stderr));
});

test("drain: --ignore-daemonsets and --delete-emptydir-data are needed as kubectl requires; then the pods move to schedulable nodes", async () => {
  const before = await pods(s1);
  const onS1 = before.filter((r) => r.node === "nd-s1");
  const svclb = onS1.find((r) => r.name.startsWith("svclb-"))?.name;
  const refused = await kubectl(s1, ["drain", "nd-s1"]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stdout, "node/nd-s1 cordoned\n");
  const emptyDirPods = onS1.filter((r) => /^(metrics-server|traefik)-/.test(r.name)).map((r) => `kube-system/${r.name}`).join(", ");
  const errs = [
    `cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/${svclb}`,
    `cannot delete Pods with local storage (use --delete-emptydir-data to override): ${emptyDirPods}`,
  ];
  assert.deepEqual(lines(refused.stderr), [
    `error: unable to drain node "nd-s1" due to error: [${errs.join(", ")}], continuing command...`,
    "There are pending nodes to be drained:", " nd-s1", ...errs,
  ]);
  assert.deepEqual((await pods(s1)).map((r) => r.name), before.map((r) => r.name), "a refused drain evicts nothing");

  const r = await kubectl(s2, ["drain", "nd-s1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s"]);
  assert.equal(r.code, 0, r.stderr);
  const evictable = onS1.filter((x) => !x.name.startsWith("svclb-")).map((x) => `${x.namespace}/${x.name}`);
  const out = lines(r.stdout);
  assert.equal(out[0], "node/nd-s1 already cordoned");
  assert.equal(out[out.length - 1], "node/nd-s1 drained");
  assert.deepEqual(out.filter((l) => l.startsWith("evicting pod ")).map((l) => l.slice(13)).sort(), evictable.sort());
  assert.deepEqual(out.filter((l) => l.endsWith(" evicted")).sort(), evictable.map((x) => `pod/${x.split("/")[1]} evicted`).sort());
  assert.deepEqual(lines(r.stderr), [`Warning: ignoring DaemonSet-managed Pods: kube-system/${svclb}`]);
  const after = await pods(s1);
  for (const app of ["coredns", "local-path-provisioner", "metrics-server", "traefik"]) {
    const p = after.filter((x) => x.name.startsWith(`${app}-`));
    assert.equal(p.length, 1, app);
    assert.equal(p[0].status, "Running");
    assert.ok(["nd-s2", "nd-plain"].includes(p[0].node), `${app} was rescheduled on ${p[0].node}, a schedulable node`);
  }
  assert.ok(after.some((x) => x.node === "nd-s1" && x.name === svclb), "the DaemonSet pod stays");
  assert.match((await kubectl(s1, ["get", "nodes"])).stdout, /\nnd-s1\s+Ready,SchedulingDisabled\s+control-plane,etcd\s+/);
  assert.equal((await kubectl(s1, ["uncordon", "nd-s1"])).code, 0);
});

test("delete node: kubectl's lines and NotFound; gone from every server with its pods; a running kubelet does not bring it back, its restart does", async () => {
  const missing = await kubectl(s1, ["delete", "node", "nd-nope"]);
  assert.deepEqual([missing.code, missing.stdout, missing.stderr], [1, "", 'Error from server (NotFound): nodes "nd-nope" not found\n']);
  const ignored = await kubectl(s1, ["delete", "node", "nd-nope", "--ignore-not-found"]);
  assert.deepEqual([ignored.code, ignored.stdout, ignored.stderr], [0, "", ""]);

  const uid = (await kubectl(s1, ["get", "node", "nd-plain", "-o", "jsonpath={.metadata.uid}"])).stdout;
  const d = await kubectl(s2, ["delete", "node", "nd-plain"]);
  assert.deepEqual([d.code, d.stdout, d.stderr], [0, 'node "nd-plain" deleted\n', ""]);
  for (const s of [s1, s2]) assert.deepEqual(await nodeNames(s), ["nd-guarded", "nd-s1", "nd-s2"]);
  assert.ok((await pods(s1)).every((p) => p.node !== "nd-plain"), "the pod GC removes the pods bound to the deleted node");
  assert.equal((await kubectl(s1, ["get", "node", "nd-plain"])).stderr, 'Error from server (NotFound): nodes "nd-plain" not found\n');
  // kubelet registers once, at start (kubernetes/kubernetes#71398): the running agent leaves it deleted.
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(plain.proc.exitCode, null);
  assert.deepEqual(await nodeNames(s2), ["nd-guarded", "nd-s1", "nd-s2"]);

  plain = await restartSim(plain);
  sims.push(plain);
  await waitNodeReady(s2, "nd-plain");
  const again = (await kubectl(s1, ["get", "node", "nd-plain", "-o", "jsonpath={.metadata.uid}"])).stdout;
  assert.match(again, /^[0-9a-f-]{36}$/);
  assert.notEqual(again, uid, "the registration after the restart creates a new Node object");
  assert.deepEqual((await pods(s1)).filter((p) => p.node === "nd-plain").map((p) => p.name.startsWith("svclb-traefik-")), [true],
    "the new node gets its DaemonSet pod and nothing else");
  const real = await run("kubectl", ["--kubeconfig", path.join(s1.root, "etc/rancher/k3s/k3s.yaml"), "delete", "node", "nd-plain"]);
  assert.deepEqual([real.code, real.stdout], [0, 'node "nd-plain" deleted\n'], real.stderr);
  assert.equal((await k3s(s1, ["kubectl", "get", "nodes", "-o", "name"])).stdout, "node/nd-guarded\nnode/nd-s1\nnode/nd-s2\n");
});
