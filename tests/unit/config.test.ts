import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EC2_ONLY_KEYS, validateConfig } from "../../components/config";

const BASE = {
  "k3s-cluster:clusterName": "demo",
  "k3s-cluster:adminCidrs": '["203.0.113.0/24"]',
  "k3s-cluster:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user",
  "k3s-cluster:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETBODY\n-----END OPENSSH PRIVATE KEY-----\n",
};

function messages(extra: Record<string, string>): string[] {
  const r = validateConfig({ ...BASE, ...extra });
  return r.ok ? [] : r.messages;
}

describe("stack configuration rules", () => {
  it("accepts a minimal stack and fills the defaults", () => {
    const r = validateConfig(BASE);
    assert.ok(r.ok);
    assert.equal(r.config.servers, 1);
    assert.equal(r.config.agents, 2);
    assert.equal(r.config.tokenTimeout, 300);
    assert.equal(r.config.autoTokenSharing, true);
    assert.equal(r.config.waitForToken, true);
  });

  it("names the key, the rule and the value for tokenTimeout", () => {
    assert.deepEqual(messages({ "k3s-cluster:tokenTimeout": "20" }), [
      'k3s-cluster:tokenTimeout must be between 30 and 600 seconds (got "20")',
    ]);
    assert.deepEqual(messages({ "k3s-cluster:tokenTimeout": "601" }).length, 1);
    assert.deepEqual(messages({ "k3s-cluster:tokenTimeout": "600" }), []);
  });

  it("refuses an even server count because etcd needs a majority", () => {
    for (const n of ["2", "4", "0"]) assert.match(messages({ "k3s-cluster:servers": n })[0], /servers must be 1, 3, 5 or 7/);
    for (const n of ["1", "3", "5", "7"]) assert.deepEqual(messages({ "k3s-cluster:servers": n }), []);
  });

  it("refuses a cluster name that is not a DNS label", () => {
    assert.match(messages({ "k3s-cluster:clusterName": "Demo_1" })[0], /clusterName must be a DNS-1123 label/);
    assert.match(messages({ "k3s-cluster:clusterName": "a".repeat(64) })[0], /at most 63/);
  });

  it("refuses 0.0.0.0/0 and malformed CIDRs, and requires at least one", () => {
    assert.match(messages({ "k3s-cluster:adminCidrs": '["0.0.0.0/0"]' })[0], /must not be 0.0.0.0\/0/);
    assert.match(messages({ "k3s-cluster:adminCidrs": '["10.0.0.300/8"]' })[0], /IPv4 CIDR/);
    assert.match(messages({ "k3s-cluster:adminCidrs": "[]" })[0], /at least one/);
  });

  it("reports an unknown key as a probable typo with the nearest valid key", () => {
    assert.deepEqual(messages({ "k3s-cluster:tokenTimout": "60" }), [
      "k3s-cluster:tokenTimout is not a setting of this program; did you mean k3s-cluster:tokenTimeout?",
    ]);
  });

  it("never echoes a secret value", () => {
    const m = messages({ "k3s-cluster:sshPrivateKey": "not-a-key-SECRETBODY", "k3s-cluster:autoTokenSharing": "false", "k3s-cluster:token": "short-SECRET" });
    assert.equal(m.length, 2);
    for (const line of m) {
      assert.ok(!line.includes("SECRET"), line);
      assert.match(line, /secret value hidden/);
    }
  });

  it("checks k3sVersion, agents and combinations", () => {
    assert.match(messages({ "k3s-cluster:k3sVersion": "1.34" })[0], /^k3s-cluster:k3sVersion must be a pinned k3s release like v1\.34\.3\+k3s1 .*\(got "1\.34"\)$/);
    assert.match(messages({ "k3s-cluster:k3sVersion": "stable" })[0], /channels such as stable, latest or v1\.34 are refused/);
    assert.match(messages({ "k3s-cluster:agents": "-1" })[0], /agents must be 0 or more/);
    assert.match(messages({ "k3s-cluster:autoTokenSharing": "false" })[0], /token is required when autoTokenSharing is false/);
    assert.match(messages({ "k3s-cluster:ami": "ami-0abc1234" })[0], /sshUser is required when ami is set/);
    assert.deepEqual(messages({ "k3s-cluster:ami": "ami-0abc1234", "k3s-cluster:sshUser": "admin" }), []);
    assert.match(messages({ "k3s-cluster:subnetIds": '["subnet-0a"]' })[0], /vpcId is required/);
    assert.match(messages({ "k3s-cluster:k3sBinaryUrl": "http://mirror/k3s" })[0], /k3sBinarySha256 is required/);
  });

  it("takes both halves of the SSH key pair or neither (then one is generated)", () => {
    const { ["k3s-cluster:sshPublicKey"]: _pub, ["k3s-cluster:sshPrivateKey"]: _priv, ...bare } = BASE;
    assert.ok(validateConfig(bare).ok);
    const r = validateConfig({ ...bare, "k3s-cluster:sshPublicKey": BASE["k3s-cluster:sshPublicKey"] });
    assert.ok(!r.ok && /sshPrivateKey must be given together/.test(r.messages[0]), JSON.stringify(r));
  });

  it("day two: drainTimeout (0-3600 s, 0 skips the drain), maxUnavailableAgents (1 or more), tokenRotation (a label)", () => {
    const defaults = validateConfig(BASE);
    assert.ok(defaults.ok);
    assert.deepEqual([defaults.config.drainTimeout, defaults.config.maxUnavailableAgents, defaults.config.tokenRotation], [120, 1, undefined]);
    const set = validateConfig({ ...BASE, "k3s-cluster:drainTimeout": "0", "k3s-cluster:maxUnavailableAgents": "3", "k3s-cluster:tokenRotation": "2026-11_b:2" });
    assert.ok(set.ok, JSON.stringify(set));
    assert.deepEqual([set.config.drainTimeout, set.config.maxUnavailableAgents, set.config.tokenRotation], [0, 3, "2026-11_b:2"]);
    assert.deepEqual(messages({ "k3s-cluster:drainTimeout": "3600" }), []);
    assert.deepEqual(messages({ "k3s-cluster:tokenRotation": "r".repeat(64) }), []);

    for (const bad of ["3601", "-1"]) {
      assert.deepEqual(messages({ "k3s-cluster:drainTimeout": bad }), [`k3s-cluster:drainTimeout must be between 0 (no drain) and 3600 seconds (got "${bad}")`]);
    }
    assert.deepEqual(messages({ "k3s-cluster:drainTimeout": "1.5" }), ['k3s-cluster:drainTimeout must be a whole number of seconds (got "1.5")']);
    assert.deepEqual(messages({ "k3s-cluster:maxUnavailableAgents": "0" }),
      ['k3s-cluster:maxUnavailableAgents must be 1 or more: how many agents may be drained and upgraded at once (got "0")']);
    assert.deepEqual(messages({ "k3s-cluster:maxUnavailableAgents": "1.5" }), ['k3s-cluster:maxUnavailableAgents must be a whole number (got "1.5")']);
    assert.deepEqual(messages({ "k3s-cluster:tokenRotation": "next month" }),
      ['k3s-cluster:tokenRotation must be a label of 1-64 letters, digits and . _ : - (change it to rotate the join token) (got "next month")']);
    assert.equal(messages({ "k3s-cluster:tokenRotation": "r".repeat(65) }).length, 1);
  });

  it("refuses tokenRotation with autoTokenSharing false, naming both keys: the user's token is rotated by the user", () => {
    const m = messages({ "k3s-cluster:autoTokenSharing": "false", "k3s-cluster:token": "user-chosen-token-0123", "k3s-cluster:tokenRotation": "2026-11" });
    assert.deepEqual(m, [
      'k3s-cluster:tokenRotation rotates tokens the cluster generated; with autoTokenSharing false the token is k3s-cluster:token: rotate it by running k3s token rotate and setting the new value there (got "2026-11")',
    ]);
    assert.ok(!m[0].includes("user-chosen"), "the token itself is not echoed");
    assert.deepEqual(messages({ "k3s-cluster:autoTokenSharing": "false", "k3s-cluster:token": "user-chosen-token-0123" }), []);
  });

  it("retiredNodes names this cluster's numbered EC2 nodes, each once", () => {
    assert.deepEqual(messages({ "k3s-cluster:retiredNodes": '["demo-server-0","demo-agent-12"]' }), []);
    assert.deepEqual(messages({ "k3s-cluster:retiredNodes": '["other-agent-0","demo-agent-01","demo-agent-1","demo-agent-1"]' }), [
      'k3s-cluster:retiredNodes[0] must name one of this cluster\'s EC2 nodes, demo-server-<n> or demo-agent-<n> (got "other-agent-0")',
      'k3s-cluster:retiredNodes[1] must name one of this cluster\'s EC2 nodes, demo-server-<n> or demo-agent-<n> (got "demo-agent-01")',
      'k3s-cluster:retiredNodes[3] is listed twice (got "demo-agent-1")',
    ]);
    assert.deepEqual(messages({ "k3s-cluster:retiredNodes": "demo-agent-0" }),
      ['k3s-cluster:retiredNodes must be a JSON list of node names, e.g. ["demo-agent-0"] (got "demo-agent-0")']);
  });

  it("reports every problem at once", () => {
    const m = messages({ "k3s-cluster:servers": "2", "k3s-cluster:tokenTimeout": "5", "k3s-cluster:pollIntervall": "1" });
    assert.equal(m.length, 3, m.join("\n"));
  });
});

describe("k3s-cluster:hosts (machines you already have)", () => {
  const KEY = BASE["k3s-cluster:sshPrivateKey"];
  const FINGERPRINT = "SHA256:uA6Lh0xq4S3m+9fQe/2WcXr1vTn8KpZ5yJbD7gHsMoE";
  type Host = { name?: string; address?: string; role?: string; [k: string]: unknown };
  const server = (name: string, address: string, extra: Partial<Host> = {}): Host => ({ name, address, role: "server", ...extra });
  const agent = (name: string, address: string, extra: Partial<Host> = {}): Host => ({ name, address, role: "agent", ...extra });
  const raw = (hosts: unknown, extra: Record<string, string> = {}) => ({
    "k3s-cluster:clusterName": "edge", "k3s-cluster:sshPrivateKey": KEY,
    "k3s-cluster:hosts": typeof hosts === "string" ? hosts : JSON.stringify(hosts), ...extra,
  });
  const problems = (hosts: unknown, extra: Record<string, string> = {}) => {
    const r = validateConfig(raw(hosts, extra));
    return r.ok ? [] : r.messages;
  };
  /** The hosts value as it appears at the end of a message about the whole list. */
  const given = (hosts: unknown) => `(got ${JSON.stringify(JSON.stringify(hosts))})`;

  it("accepts a list without any EC2 setting: counts from the roles, ports as numbers, adminCidrs not needed", () => {
    const r = validateConfig(raw([
      agent("a0", "203.0.113.20", { sshUser: "debian", sshPort: "2222" }),
      server("s0", "203.0.113.10", { privateAddress: "10.0.0.10", hostKey: FINGERPRINT }),
      server("s1", "s1.edge.example.net"), server("s2", "2001:db8::12"),
    ]));
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.config.servers, 3);
    assert.equal(r.config.agents, 1);
    assert.equal(r.config.hosts![0].sshPort, 2222);
    assert.equal(r.config.hosts![1].hostKey, FINGERPRINT);
    assert.deepEqual(r.config.adminCidrs, []);
    // The same address on another port is another machine (or the same one's other sshd): allowed.
    assert.ok(validateConfig(raw([server("s0", "203.0.113.10", { privateAddress: "10.0.0.1" }), agent("a0", "203.0.113.10", { sshPort: 2222, privateAddress: "10.0.0.2" })])).ok);
  });

  it("refuses every EC2-only key together with hosts, naming both keys and the value given", () => {
    const values: Record<(typeof EC2_ONLY_KEYS)[number], string> = {
      servers: "3", agents: "2", serverInstanceType: "t3.large", agentInstanceType: "t4g.small", ami: "ami-0abc1234",
      sshPublicKey: BASE["k3s-cluster:sshPublicKey"], adminCidrs: '["203.0.113.0/24"]', vpcId: "vpc-0abc1234",
      subnetIds: '["subnet-0a"]', tags: '{"team":"edge"}', retiredNodes: '["demo-agent-0"]',
    };
    for (const key of EC2_ONLY_KEYS) {
      assert.deepEqual(problems([server("s0", "203.0.113.10")], { [`k3s-cluster:${key}`]: values[key] }), [
        `k3s-cluster:${key} applies only to EC2 instances and cannot be combined with k3s-cluster:hosts (the hosts list gives the machines, their roles and addresses) (got ${JSON.stringify(values[key])})`,
      ]);
    }
  });

  it("requires sshPrivateKey with hosts: nothing else could log in to them", () => {
    const { ["k3s-cluster:sshPrivateKey"]: _key, ...withoutKey } = raw([server("s0", "203.0.113.10")]);
    const r = validateConfig(withoutKey);
    assert.deepEqual(r.ok ? [] : r.messages, [
      "k3s-cluster:sshPrivateKey is required with k3s-cluster:hosts: the key that logs in to those machines (pulumi config set --secret k3s-cluster:sshPrivateKey < key) (got not set)",
    ]);
  });

  it("refuses an even number of servers, and a list without any", () => {
    const two = [server("s0", "203.0.113.10"), server("s1", "203.0.113.11"), agent("a0", "203.0.113.20")];
    assert.deepEqual(problems(two), [
      `k3s-cluster:hosts must hold 1, 3, 5 or 7 hosts with role "server" (embedded etcd needs an odd count for a majority); it holds 2`,
    ]);
    const agentsOnly = [agent("a0", "203.0.113.20")];
    assert.deepEqual(problems(agentsOnly), [
      `k3s-cluster:hosts must hold 1, 3, 5 or 7 hosts with role "server" (embedded etcd needs an odd count for a majority); it holds 0`,
    ]);
  });

  it("refuses a repeated name, SSH address:port or private address, naming both hosts", () => {
    const sameName = [server("s0", "203.0.113.10"), agent("s0", "203.0.113.20")];
    assert.deepEqual(problems(sameName), ["k3s-cluster:hosts[1].name repeats hosts[0]'s name s0: every host needs its own (got \"s0\")"]);
    const sameSsh = [server("s0", "203.0.113.10", { privateAddress: "10.0.0.1" }), agent("a0", "203.0.113.10", { sshPort: 22, privateAddress: "10.0.0.2" })];
    assert.deepEqual(problems(sameSsh), ["k3s-cluster:hosts[1].address repeats hosts[0]'s SSH address 203.0.113.10:22: every host needs its own (got \"203.0.113.10\")"]);
    // Without privateAddress a host is reached by the others at its address: that counts as its private one.
    const samePrivate = [server("s0", "10.0.0.1"), agent("a0", "203.0.113.20", { privateAddress: "10.0.0.1" })];
    assert.deepEqual(problems(samePrivate), ["k3s-cluster:hosts[1].privateAddress repeats hosts[0]'s private address 10.0.0.1: every host needs its own (got \"10.0.0.1\")"]);
  });

  it("names the host and field of a problem inside the list, with that field's value", () => {
    assert.deepEqual(problems([server("s0", "203.0.113.10"), { name: "a0", address: "203.0.113.20" }]), [
      'k3s-cluster:hosts[1].role must be "server" or "agent" (got not set)',
    ]);
    assert.deepEqual(problems([server("s0", "203.0.113.10", { hostKey: "MD5:16:27:ac:a5:76:28:2d:36" })]), [
      'k3s-cluster:hosts[0].hostKey must be the SHA256:<43 base64 characters> fingerprint `ssh-keygen -lf` prints for the host key (got "MD5:16:27:ac:a5:76:28:2d:36")',
    ]);
    assert.deepEqual(problems([server("Edge_S0", "203.0.113.10")]), [
      'k3s-cluster:hosts[0].name must be a DNS-1123 label: it becomes the Kubernetes node name (got "Edge_S0")',
    ]);
    assert.deepEqual(problems([server("s0", "ssh://203.0.113.10:22")]), [
      'k3s-cluster:hosts[0].address must be an IP address or host name this machine reaches over SSH (got "ssh://203.0.113.10:22")',
    ]);
    assert.deepEqual(problems([server("s0", "203.0.113.10", { sshPort: 70000 })]), [
      "k3s-cluster:hosts[0].sshPort must be a port number 1-65535 (got 70000)",
    ]);
    assert.deepEqual(problems([server("s0", "203.0.113.10", { sshUser: "Admin User" })]), [
      'k3s-cluster:hosts[0].sshUser must be a Unix user name (got "Admin User")',
    ]);
    // A misspelt field is refused rather than ignored (a `user` would otherwise silently log in as the default).
    assert.deepEqual(problems([server("s0", "203.0.113.10", { user: "debian" })]), [
      'k3s-cluster:hosts[0] must be an object with name, address and role (got {"name":"s0","address":"203.0.113.10","role":"server","user":"debian"})',
    ]);
  });

  it("refuses a value that is not a JSON list of hosts", () => {
    assert.deepEqual(problems("edge-s0,edge-a0"), ['k3s-cluster:hosts must be a JSON list of {name, address, role, …} objects (got "edge-s0,edge-a0")']);
    assert.deepEqual(problems(["edge-s0"]), ['k3s-cluster:hosts[0] must be an object with name, address and role (got "edge-s0")']);
  });

  it("without hosts, adminCidrs is required (EC2 instances get security groups from it)", () => {
    const { ["k3s-cluster:adminCidrs"]: _cidrs, ...ec2 } = BASE;
    const r = validateConfig(ec2);
    assert.deepEqual(r.ok ? [] : r.messages, ["k3s-cluster:adminCidrs is required (got not set)"]);
  });
});
