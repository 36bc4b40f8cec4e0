// The manifest each node applies (the k3s_cluster class interface) and the kubeconfig rewrite.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { renderManifest } from "../../components/puppet-manifest";
import { apiServerUrl, rewriteKubeconfig } from "../../components/kubeconfig";
import { directoryDigest } from "../../components/bootstrap";
import { K3S_YAML } from "../helpers/k3s-yaml";

const base = {
  nodeType: "server" as const, clusterInit: true, clusterName: "demo", k3sVersion: "v1.34.3+k3s1",
  nodeName: "demo-server-0", tlsSan: ["203.0.113.10"], tokenTimeout: 300, startService: false,
};

test("first server: cluster_init, script install, no token_file or server_url", () => {
  const m = renderManifest(base);
  assert.equal(m, `# Written by the k3s-cluster Pulumi program; applied with puppet apply --detailed-exitcodes.
class { 'k3s_cluster':
  node_type          => 'server',
  cluster_init       => true,
  cluster_name       => 'demo',
  auto_token_sharing => false,
  k3s_version        => 'v1.34.3+k3s1',
  install_method     => 'script',
  token_timeout      => 300,
  start_service      => false,
  node_name          => 'demo-server-0',
  tls_san            => ['203.0.113.10'],
}
`);
});

test("joining agent with a binary source: token_file, server_url, binary_source and sha256", () => {
  const m = renderManifest({ ...base, nodeType: "agent", clusterInit: false, tokenFile: "/etc/rancher/k3s/cluster-token",
    serverUrl: "https://10.0.1.10:6443", binarySource: "https://mirror.example/k3s", binarySha256: "ab".repeat(32), tlsSan: [] });
  assert.match(m, /token_file +=> '\/etc\/rancher\/k3s\/cluster-token',/);
  assert.match(m, /server_url +=> 'https:\/\/10\.0\.1\.10:6443',/);
  assert.match(m, /install_method +=> 'binary',\n  binary_source +=> 'https:\/\/mirror\.example\/k3s',\n  binary_sha256 +=> 'abab/);
  assert.match(m, /tls_san +=> \[\],/);
});

test("values are Puppet-escaped, and the manifest parses with Puppet", () => {
  const m = renderManifest({ ...base, clusterName: "it's\\odd" });
  assert.match(m, /cluster_name +=> 'it\\'s\\\\odd',/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-manifest-"));
  fs.writeFileSync(path.join(dir, "site.pp"), m);
  const r = spawnSync("puppet", ["parser", "validate", path.join(dir, "site.pp")], { encoding: "utf8", env: { ...process.env, HOME: dir } });
  assert.equal(r.error, undefined, "puppet must be installed");
  assert.equal(r.status, 0, r.stdout + r.stderr);
});


test("kubeconfig: server rewritten to the API endpoint, every name the cluster's, credentials kept", () => {
  const out = parse(rewriteKubeconfig(K3S_YAML, "demo", "https://203.0.113.10:6443"));
  assert.equal(out.clusters[0].cluster.server, "https://203.0.113.10:6443");
  assert.equal(out.clusters[0].cluster["certificate-authority-data"], "Q0E=");
  assert.equal(out.clusters[0].name, "demo");
  assert.deepEqual(out.contexts[0], { context: { cluster: "demo", user: "demo" }, name: "demo" });
  assert.equal(out["current-context"], "demo");
  assert.deepEqual(out.users[0], { name: "demo", user: { "client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ" } });
});

test("kubeconfig: an unexpected file is refused with a clear message", () => {
  assert.throws(() => rewriteKubeconfig("clusters: [", "demo", "https://x:6443"), /not YAML/);
  assert.throws(() => rewriteKubeconfig("apiVersion: v1\nclusters: []\n", "demo", "https://x:6443"), /exactly one cluster, user and context/);
});

test("apiServerUrl: bare IPv4, hostname, IPv6 and URL", () => {
  assert.equal(apiServerUrl("203.0.113.10"), "https://203.0.113.10:6443");
  assert.equal(apiServerUrl("k3s.example.com"), "https://k3s.example.com:6443");
  assert.equal(apiServerUrl("2001:db8::1"), "https://[2001:db8::1]:6443");
  assert.equal(apiServerUrl("https://lb.example.com:443"), "https://lb.example.com:443");
});

test("directoryDigest is stable and changes with any file's content or name", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-digest-"));
  fs.mkdirSync(path.join(dir, "a/b"), { recursive: true });
  fs.writeFileSync(path.join(dir, "a/b/init.pp"), "class a {}\n");
  fs.writeFileSync(path.join(dir, "z.txt"), "z");
  const d1 = directoryDigest(dir);
  assert.match(d1, /^[0-9a-f]{64}$/);
  assert.equal(directoryDigest(dir), d1);
  fs.writeFileSync(path.join(dir, "a/b/init.pp"), "class a { }\n");
  const d2 = directoryDigest(dir);
  assert.notEqual(d2, d1);
  fs.renameSync(path.join(dir, "z.txt"), path.join(dir, "y.txt"));
  assert.notEqual(directoryDigest(dir), d2);
  assert.throws(() => directoryDigest(path.join(dir, "missing")), /Puppet modules directory .*missing does not exist: run pulumi from the project root/);
});

test("every attribute the manifest sets is a parameter of the real k3s_cluster class", () => {
  const init = fs.readFileSync(path.resolve(__dirname, "../../puppet/modules/k3s_cluster/manifests/init.pp"), "utf8");
  const params = new Set([...init.matchAll(/^\s+[A-Z][^$\n]*\$([a-z_]+)\s*=/gm)].map((m) => m[1]));
  const m = renderManifest({ ...base, nodeType: "agent", clusterInit: false, tokenFile: "/etc/rancher/k3s/cluster-token",
    serverUrl: "https://10.0.1.10:6443", binarySource: "https://mirror.example/k3s", binarySha256: "ab".repeat(32) });
  const attrs = [...m.matchAll(/^  ([a-z_]+) +=>/gm)].map((a) => a[1]);
  assert.ok(attrs.length >= 12, attrs.join(" "));
  for (const a of attrs) assert.ok(params.has(a), `k3s_cluster has no parameter ${a} (it has: ${[...params].join(", ")})`);
});
