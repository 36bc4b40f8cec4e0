// The day-two scripts run on the first server (membership, rolling agents, token rotation, the whole-cluster
// check) and the server token file's rewrite: shellcheck-clean, and run for real in a throwaway root against a
// stub `k3s` at /usr/local/bin/k3s (first on the scripts' PATH) that answers like kubectl and `k3s token rotate`
// from files under /state, and records every call in /stub-calls.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { rewriteServerTokenFileScript } from "../../components/bootstrap-scripts";
import { verifyClusterScript } from "../../components/cluster-check";
import {
  afterAgentUpdateScript, beforeAgentUpdateScript, removeNodeScript, waitNodeReadyScript,
} from "../../components/membership-scripts";
import { rotateTokenScript } from "../../components/token-rotation";
import {
  assertShellcheckClean, fakeRoot, recordingStub, rootCommand, rootPath, runInFakeRoot, stubCalls, type RootFile,
} from "./script-root";

const OLD = "v1.34.3+k3s1";
const NEW = "v1.35.0+k3s1";
const OLD_TOKEN = "K10" + "ab".repeat(32) + "::server:" + "01d0".repeat(8);
const NEW_TOKEN = "K10" + "ab".repeat(32) + "::server:" + "9e49".repeat(8);

// kubectl's words for each answer; the n-th node listing is /state/nodes.<n> (or the last one there is), so a
// test lays out what the cluster shows over time. Rows are "NAME STATUS ROLES AGE VERSION".
const K3S_STUB = String.raw`echo "k3s $*" >> /stub-calls
listing() {
  n=$(( $(cat /state/listings 2>/dev/null || echo 0) + 1 ))
  echo "$n" > /state/listings
  while [ "$n" -gt 1 ] && [ ! -e "/state/nodes.$n" ]; do n=$((n - 1)); done
  cat "/state/nodes.$n" 2>/dev/null || true
}
header="NAME      STATUS   ROLES                  AGE   VERSION"
case "$1 $2 $3" in
  "kubectl get node")
    row=$(listing | awk -v n="$4" '$1 == n')
    if [ -z "$row" ]; then echo "Error from server (NotFound): nodes \"$4\" not found" >&2; exit 1; fi
    printf '%s\n%s\n' "$header" "$row" ;;
  "kubectl get nodes")
    if [ "$4" = "-o" ]; then
      if [ -e /state/list-error ]; then cat /state/list-error >&2; exit 1; fi
      cat /state/nodes.json; exit 0
    fi
    printf '%s\n' "$header"; listing ;;
  "kubectl cordon "*) echo "node/$3 cordoned" ;;
  "kubectl uncordon "*) echo "node/$3 uncordoned" ;;
  "kubectl drain "*)
    echo "node/$3 cordoned"
    if [ -e /state/drain-errors ]; then
      echo "evicting pod default/guarded-7f9c"
      cat /state/drain-errors >&2
      exit 1
    fi
    printf 'evicting pod kube-system/coredns-6799fbcd5-x2x9q\npod/coredns-6799fbcd5-x2x9q evicted\nnode/%s drained\n' "$3" ;;
  "kubectl delete node") echo "node \"$4\" deleted" ;;
  "token rotate --data-dir")
    case "$(cat /state/rotate 2>/dev/null)" in
      rewrite) cat /state/new-token > "$4/server/token"; echo "Token rotated, restart k3s nodes with new token:"; cat /state/new-token ;;
      fail) echo 'FATA[0000] failed to rotate token: Unauthorized' >&2; exit 1 ;;
      *) echo "Token rotated, restart k3s nodes with new token:"; cat "$4/server/token" ;;
    esac ;;
  *) echo "stub k3s: unexpected $*" >&2; exit 99 ;;
esac`;

/** kubectl's eviction failures for two pods, as a real kubectl prints them when the drain times out. */
const DRAIN_ERRORS = `error when evicting pods/"guarded-7f9c" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
error when evicting pods/"prom-0" -n "monitoring" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
There are pending pods in node "a0" when an error occurred: error when evicting pods/"guarded-7f9c" -n "default": global timeout reached: 30s
pod/guarded-7f9c
error: unable to drain node "a0" due to error: error when evicting pods/"guarded-7f9c" -n "default": global timeout reached: 30s, continuing command...
There are pending nodes to be drained:
 a0
error when evicting pods/"guarded-7f9c" -n "default": global timeout reached: 30s
error when evicting pods/"prom-0" -n "monitoring": global timeout reached: 30s
`;

const row = (name: string, status: string, roles: string, version: string) => `${name}   ${status}   ${roles}   5m   ${version}\n`;
const server = (name: string, version = OLD, status = "Ready") => row(name, status, "control-plane,etcd,master", version);
const agent = (name: string, version = OLD, status = "Ready") => row(name, status, "<none>", version);

/** A root with the stub k3s, a recording systemctl, and the cluster's listings over time. */
function cluster(listings: string[], extra: Record<string, RootFile> = {}): string {
  const files: Record<string, RootFile> = {
    "/usr/local/bin/k3s": { script: K3S_STUB, shell: "/bin/bash" },
    "/usr/local/bin/systemctl": recordingStub("systemctl", "[ \"$1\" != is-active ] || [ -e /state/k3s-active ]"),
    "/state/.keep": "",
    ...extra,
  };
  listings.forEach((l, i) => { files[`/state/nodes.${i + 1}`] = l; });
  return fakeRoot(files);
}

const run = (root: string, script: string, timeoutSeconds = 30) => runInFakeRoot(root, rootCommand(script, timeoutSeconds));
const calls = (root: string) => stubCalls(root).split("\n").filter(Boolean);
const kubectlCalls = (root: string) => calls(root).filter((c) => c.startsWith("k3s kubectl ") && !c.startsWith("k3s kubectl get "));

test("every day-two script is shellcheck-clean, with and without a drain", () => {
  const scripts: Record<string, string> = {
    waitNodeReady: waitNodeReadyScript("edge-a0", "agent", 300),
    removeNode: removeNodeScript("edge-a0", 120),
    removeNodeNoDrain: removeNodeScript("edge-a0", 0),
    beforeAgentUpdate: beforeAgentUpdateScript("edge-a0", OLD, 900, 120),
    beforeAgentUpdateNoDrain: beforeAgentUpdateScript("edge-a0", OLD, 900, 0),
    afterAgentUpdate: afterAgentUpdateScript("edge-a0", OLD, 300),
    rotateToken: rotateTokenScript(),
    verifyCluster: verifyClusterScript([{ name: "edge-s0", role: "server" }, { name: "edge-a0", role: "agent" }], 300),
  };
  for (const [name, script] of Object.entries(scripts)) assertShellcheckClean(name, script);
});

test("waitNodeReady: a server listed Ready as control-plane passes at once, naming its roles and version", () => {
  const root = cluster([server("s0") + agent("a0")]);
  const r = run(root, waitNodeReadyScript("s0", "server", 5));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `waiting up to 5s for node s0 to be listed Ready as a server\nnode s0 is Ready (control-plane,etcd,master, ${OLD})\n`);
  assert.deepEqual(calls(root), ["k3s kubectl get node s0"]);
});

test("waitNodeReady: an agent not listed yet, then NotReady, then Ready (cordoned still counts) is waited for", () => {
  const root = cluster([server("s0"), server("s0") + agent("a0", OLD, "NotReady"), server("s0") + agent("a0", OLD, "Ready,SchedulingDisabled")]);
  const r = run(root, waitNodeReadyScript("a0", "agent", 10));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^waiting up to 10s for node a0 to be listed Ready as an agent\n/);
  assert.match(r.stdout, new RegExp(`node a0 is Ready \\(<none>, ${OLD.replace(/[.+]/g, "\\$&")}\\)\n$`));
  assert.equal(calls(root).length, 3, "it looked three times, a second apart");
});

test("waitNodeReady: NotReady, the wrong role or not listed within the bound fails, saying which", () => {
  const cases: [string, "server" | "agent", string, string][] = [
    ["a0", "agent", agent("a0", OLD, "NotReady"), "node a0 is not a Ready agent after 2s: NotReady"],
    ["a0", "agent", server("a0"), "node a0 is not a Ready agent after 2s: listed with roles control-plane,etcd,master, not as an agent"],
    ["s1", "server", agent("s1"), "node s1 is not a Ready server after 2s: listed with roles <none>, not as a server"],
    ["s2", "server", server("s0"), "node s2 is not a Ready server after 2s: not listed"],
  ];
  for (const [node, role, listing, message] of cases) {
    const r = run(cluster([listing]), waitNodeReadyScript(node, role, 2));
    assert.equal(r.code, 1, `${node} as ${role}: ${r.stdout}`);
    assert.equal(r.stderr, `${message}\n`);
  }
});

test("removeNode: a node the cluster no longer lists is nothing to do", () => {
  const root = cluster([server("s0")]);
  const r = run(root, removeNodeScript("a0", 30));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "node a0 is not in the cluster: nothing to remove\n");
  assert.deepEqual(calls(root), ["k3s kubectl get node a0"], "nothing cordoned, drained or deleted");
});

test("removeNode: cordon, drain within drainTimeout, then delete the Node", () => {
  const root = cluster([server("s0") + agent("a0")]);
  const r = run(root, removeNodeScript("a0", 30));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(kubectlCalls(root), [
    "k3s kubectl cordon a0",
    "k3s kubectl drain a0 --ignore-daemonsets --delete-emptydir-data --timeout=30s",
    "k3s kubectl delete node a0",
  ]);
  assert.equal(r.stdout, "cordoning and draining a0 (up to 30s)\nnode/a0 cordoned\nnode/a0 drained\nnode \"a0\" deleted\nnode a0 removed from the cluster\n");
});

test("removeNode: a drain that cannot finish names the pods as namespace/name, uncordons the node, keeps it and fails", () => {
  const root = cluster([server("s0") + agent("a0")], { "/state/drain-errors": DRAIN_ERRORS });
  const r = run(root, removeNodeScript("a0", 30));
  assert.equal(r.code, 1, r.stdout);
  const lines = r.stderr.split("\n");
  assert.equal(lines[0], "node a0 could not be drained within 30s; pods that would not leave: default/guarded-7f9c,monitoring/prom-0");
  assert.deepEqual(lines.slice(1, 6), DRAIN_ERRORS.trimEnd().split("\n").slice(-5), "the last lines of kubectl's output follow");
  assert.equal(lines[6], "node a0 was uncordoned and keeps serving");
  assert.deepEqual(kubectlCalls(root), [
    "k3s kubectl cordon a0",
    "k3s kubectl drain a0 --ignore-daemonsets --delete-emptydir-data --timeout=30s",
    "k3s kubectl uncordon a0",
  ], "the Node is not deleted");
});

test("removeNode with drainTimeout 0 deletes the Node without cordon or drain", () => {
  const root = cluster([agent("a0")]);
  const r = run(root, removeNodeScript("a0", 0));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(kubectlCalls(root), ["k3s kubectl delete node a0"]);
});

test("beforeAgentUpdate: waits until every server runs the release (agents do not count), then cordons and drains the agent", () => {
  const root = cluster([
    server("s0", NEW) + server("s1", OLD) + agent("a0", OLD) + agent("a1", OLD),
    server("s0", NEW) + server("s1", NEW) + agent("a0", OLD) + agent("a1", OLD),
  ]);
  const r = run(root, beforeAgentUpdateScript("a0", NEW, 10, 30));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^waiting up to 10s for every server to run ${NEW.replace(/[.+]/g, "\\$&")} before a0 changes\n`));
  assert.deepEqual(calls(root).slice(0, 2), ["k3s kubectl get nodes", "k3s kubectl get nodes"], "looked again until s1 caught up");
  assert.deepEqual(kubectlCalls(root), ["k3s kubectl cordon a0", "k3s kubectl drain a0 --ignore-daemonsets --delete-emptydir-data --timeout=30s"]);
  assert.match(r.stdout, /node\/a0 drained\n$/);
});

test("beforeAgentUpdate: servers still behind after the wait are named with their versions; the agent is left alone", () => {
  const root = cluster([server("s0", NEW) + server("s1", OLD) + server("s2", OLD) + agent("a0", OLD)]);
  const r = run(root, beforeAgentUpdateScript("a0", NEW, 2, 30));
  assert.equal(r.code, 1, r.stdout);
  assert.equal(r.stderr, `servers not at ${NEW} after 2s: s1 (${OLD}),s2 (${OLD}); a0 left as it is\n`);
  assert.deepEqual(kubectlCalls(root), [], "not cordoned");
});

test("beforeAgentUpdate: a failed drain names the pods and uncordons; drainTimeout 0 neither cordons nor drains", () => {
  const failing = cluster([server("s0", NEW) + agent("a0")], { "/state/drain-errors": DRAIN_ERRORS });
  const f = run(failing, beforeAgentUpdateScript("a0", NEW, 5, 45));
  assert.equal(f.code, 1);
  assert.match(f.stderr, /^node a0 could not be drained within 45s; pods that would not leave: default\/guarded-7f9c,monitoring\/prom-0\n/);
  assert.deepEqual(kubectlCalls(failing).at(-1), "k3s kubectl uncordon a0");

  const noDrain = cluster([server("s0", NEW) + agent("a0")]);
  const n = run(noDrain, beforeAgentUpdateScript("a0", NEW, 5, 0));
  assert.equal(n.code, 0, n.stderr);
  assert.deepEqual(kubectlCalls(noDrain), []);
});

test("afterAgentUpdate: uncordons, then waits until the agent is Ready at the release", () => {
  const root = cluster([
    agent("a0", OLD, "Ready,SchedulingDisabled"),
    agent("a0", NEW, "NotReady"),
    agent("a0", NEW, "Ready"),
  ]);
  const r = run(root, afterAgentUpdateScript("a0", NEW, 10));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(calls(root)[0], "k3s kubectl uncordon a0", "uncordoned first");
  assert.equal(calls(root).length, 4, "three looks: old release, NotReady, Ready");
  assert.equal(r.stdout, `node/a0 uncordoned\nwaiting up to 10s for a0 to be Ready at ${NEW}\nnode a0 is Ready at ${NEW}\n`);
});

test("afterAgentUpdate: an agent that does not come back at the release within the bound fails, naming what it shows", () => {
  const behind = run(cluster([agent("a0", OLD)]), afterAgentUpdateScript("a0", NEW, 2));
  assert.equal(behind.code, 1);
  assert.equal(behind.stderr, `node a0 did not come back Ready at ${NEW} within 2s (status Ready, version ${OLD})\n`);
  const gone = run(cluster([server("s0", NEW)]), afterAgentUpdateScript("a0", NEW, 2));
  assert.equal(gone.code, 1);
  assert.equal(gone.stderr, `node a0 did not come back Ready at ${NEW} within 2s (status not listed, version unknown)\n`);
});

test("rotateToken: k3s token rotate rewrites the server token, then k3s restarts; no token is printed", () => {
  const files = { "/state/rotate": "rewrite", "/state/new-token": NEW_TOKEN + "\n", "/var/lib/rancher/k3s/server/token": OLD_TOKEN + "\n" };
  const root = cluster([], files);
  const r = run(root, rotateTokenScript());
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(rootPath(root, "/var/lib/rancher/k3s/server/token"), "utf8"), NEW_TOKEN + "\n");
  assert.deepEqual(calls(root), ["k3s token rotate --data-dir /var/lib/rancher/k3s", "systemctl restart --no-block k3s"]);
  assert.equal(r.stdout, "server token rotated; restarting k3s so that only the new token is accepted\n");
  assert.ok(!(r.stdout + r.stderr).includes(NEW_TOKEN.slice(-32)) && !(r.stdout + r.stderr).includes(OLD_TOKEN.slice(-32)));

  // Another data dir is passed on, and its token file is the one compared.
  const other = cluster([], { ...files, "/var/lib/rancher/k3s/server/token": "", "/srv/k3s/server/token": OLD_TOKEN + "\n" });
  assert.equal(run(other, rotateTokenScript("/srv/k3s")).code, 0);
  assert.equal(calls(other)[0], "k3s token rotate --data-dir /srv/k3s");
  assert.equal(fs.readFileSync(rootPath(other, "/srv/k3s/server/token"), "utf8"), NEW_TOKEN + "\n");
});

test("rotateToken: a rotate that leaves the token file as it was, or fails, fails the step before any restart", () => {
  const unchanged = cluster([], { "/state/rotate": "noop", "/var/lib/rancher/k3s/server/token": OLD_TOKEN + "\n" });
  const u = run(unchanged, rotateTokenScript());
  assert.equal(u.code, 1);
  assert.equal(u.stderr, "k3s token rotate finished but /var/lib/rancher/k3s/server/token did not change\n");
  assert.ok(!u.stdout.includes(OLD_TOKEN.slice(-32)), "k3s's own output (it holds the token) is not shown");
  assert.deepEqual(calls(unchanged), ["k3s token rotate --data-dir /var/lib/rancher/k3s"], "k3s not restarted");

  const failing = cluster([], { "/state/rotate": "fail", "/var/lib/rancher/k3s/server/token": OLD_TOKEN + "\n" });
  const f = run(failing, rotateTokenScript());
  assert.equal(f.code, 1);
  assert.equal(f.stderr, "FATA[0000] failed to rotate token: Unauthorized\n");
  assert.deepEqual(calls(failing), ["k3s token rotate --data-dir /var/lib/rancher/k3s"]);
});

test("rewriteServerTokenFile: the new token from stdin replaces the file (0600), then a running k3s restarts; a stopped one stays stopped", () => {
  const file = "/etc/rancher/k3s/cluster-token";
  const active = cluster([], { "/state/k3s-active": "", [file]: OLD_TOKEN + "\n" });
  const a = runInFakeRoot(active, `printf '%s\\n' '${NEW_TOKEN}' | ${rootCommand(rewriteServerTokenFileScript(file))}`);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(fs.readFileSync(rootPath(active, file), "utf8"), NEW_TOKEN + "\n");
  assert.equal(fs.statSync(rootPath(active, file)).mode & 0o777, 0o600);
  assert.deepEqual(calls(active), ["systemctl is-active --quiet k3s", "systemctl restart --no-block k3s"]);
  assert.match(a.stdout, /restarting k3s so that only the new token is accepted/);
  assert.ok(!(a.stdout + a.stderr).includes(NEW_TOKEN.slice(-32)));

  const stopped = cluster([], { [file]: OLD_TOKEN + "\n" });
  assert.equal(runInFakeRoot(stopped, `printf '%s\\n' '${NEW_TOKEN}' | ${rootCommand(rewriteServerTokenFileScript(file))}`).code, 0);
  assert.deepEqual(calls(stopped), ["systemctl is-active --quiet k3s"], "nothing to restart");

  // A malformed token is refused by the write, before anything restarts.
  const bad = cluster([], { "/state/k3s-active": "", [file]: OLD_TOKEN + "\n" });
  const b = runInFakeRoot(bad, `printf 'a b\\n' | ${rootCommand(rewriteServerTokenFileScript(file))}`);
  assert.equal(b.code, 1);
  assert.equal(fs.readFileSync(rootPath(bad, file), "utf8"), OLD_TOKEN + "\n");
  assert.deepEqual(calls(bad), []);
});

// The whole-cluster check runs the module's own k3s-cluster-verify-cluster, installed where the module puts it.
const VERIFY_CLUSTER = fs.readFileSync(path.join(__dirname, "../../puppet/modules/k3s_cluster/files/k3s-cluster-verify-cluster.sh"), "utf8");
const jsonNode = (name: string, role: "server" | "agent", ready: "True" | "False" | "Unknown") => ({
  metadata: { name, labels: role === "server" ? { "node-role.kubernetes.io/control-plane": "true" } : {} },
  status: { conditions: [{ type: "Ready", status: ready }] },
});
function checkedCluster(items: unknown[], extra: Record<string, RootFile> = {}): string {
  return cluster([], {
    "/usr/local/sbin/k3s-cluster-verify-cluster": { script: VERIFY_CLUSTER.replace(/^#![^\n]*\n/, ""), shell: "/bin/bash" },
    "/state/nodes.json": JSON.stringify({ items }),
    ...extra,
  });
}
const EXPECTED = [{ name: "s0", role: "server" as const }, { name: "s1", role: "server" as const }, { name: "a0", role: "agent" as const }, { name: "a1", role: "agent" as const }];

test("verifyCluster: every declared node Ready with its role prints the module's JSON verdict and passes", () => {
  const root = checkedCluster([jsonNode("s0", "server", "True"), jsonNode("s1", "server", "True"), jsonNode("a0", "agent", "True"), jsonNode("a1", "agent", "True")]);
  const r = run(root, verifyClusterScript(EXPECTED, 0));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const verdict = JSON.parse(r.stdout);
  assert.equal(verdict.ok, true);
  assert.deepEqual(verdict.nodes.map((n: { name: string; role: string; status: string }) => [n.name, n.role, n.status]),
    EXPECTED.map((n) => [n.name, n.role, "Ready"]));
  assert.deepEqual(calls(root), ["k3s kubectl get nodes -o json"]);
});

test("verifyCluster: its failure line names every node not Ready with its role, and why; the verdict is still printed", () => {
  const root = checkedCluster([jsonNode("s0", "server", "False"), jsonNode("s1", "agent", "True"), jsonNode("a0", "agent", "True")]);
  const r = run(root, verifyClusterScript(EXPECTED, 0));
  assert.equal(r.code, 1, r.stdout);
  assert.equal(r.stderr,
    "the cluster does not list every declared node Ready with its role within 0s: s0 (server): NotReady, s1 (server): wrong-role, a1 (agent): missing\n");
  assert.equal(JSON.parse(r.stdout).ok, false);

  const unreachable = checkedCluster([], { "/state/list-error": "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n" });
  const u = run(unreachable, verifyClusterScript(EXPECTED, 0));
  assert.equal(u.code, 1);
  assert.equal(u.stderr, "the cluster does not list every declared node Ready with its role within 0s: "
    + "cannot list the nodes: The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n");
});
