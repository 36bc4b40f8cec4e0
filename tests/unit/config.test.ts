import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../../components/config";

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
    assert.match(messages({ "k3s-cluster:k3sVersion": "1.34" })[0], /pinned release like v1.34.3\+k3s1/);
    assert.deepEqual(messages({ "k3s-cluster:k3sVersion": "stable" }), []);
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

  it("reports every problem at once", () => {
    const m = messages({ "k3s-cluster:servers": "2", "k3s-cluster:tokenTimeout": "5", "k3s-cluster:pollIntervall": "1" });
    assert.equal(m.length, 3, m.join("\n"));
  });
});
