// One rule for the k3s release on both sides: the stack config's expression (components/k3s-version.ts) and
// the Puppet module's K3s_cluster::Version are the same text, and the shared table of accepted and refused
// values holds for the TypeScript side here (the module's rspec reads the same table).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { K3S_VERSION_PATTERN, K3S_VERSION_RULE, checkK3sVersion, isK3sVersion } from "../../components/k3s-version";
import { validateConfig } from "../../components/config";

/** What the stack config says about a k3sVersion value, everything else valid. */
function configMessages(version: string): string[] {
  const r = validateConfig({
    "k3s-cluster:clusterName": "demo",
    "k3s-cluster:adminCidrs": '["203.0.113.0/24"]',
    "k3s-cluster:k3sVersion": version,
  });
  return r.ok ? [] : r.messages;
}

const root = path.resolve(__dirname, "../..");
const table = JSON.parse(readFileSync(path.join(root, "tests/fixtures/k3s-versions.json"), "utf8")) as { accepted: string[]; refused: string[] };
const alias = readFileSync(path.join(root, "puppet/modules/k3s_cluster/types/version.pp"), "utf8");

describe("k3sVersion: one rule for the stack config and the Puppet module", () => {
  it("the table is not empty on either side", () => {
    assert.ok(table.accepted.length >= 5 && table.refused.length >= 10);
    assert.ok(table.refused.includes("stable") && table.refused.includes("v1.34"), "channels are in the refused column");
  });

  for (const v of table.accepted) {
    it(`accepts ${JSON.stringify(v)}`, () => {
      assert.equal(isK3sVersion(v), true);
      assert.equal(checkK3sVersion(v), undefined);
      assert.deepEqual(configMessages(v), [], "the stack config accepts it too");
    });
  }

  for (const v of table.refused) {
    it(`refuses ${JSON.stringify(v)}, naming the setting, the rule and the value`, () => {
      assert.equal(isK3sVersion(v), false);
      assert.equal(checkK3sVersion(v), `k3s-cluster:k3sVersion ${K3S_VERSION_RULE} (got ${JSON.stringify(v)})`);
      assert.deepEqual(configMessages(v), [`k3s-cluster:k3sVersion ${K3S_VERSION_RULE} (got ${JSON.stringify(v)})`], "the stack config refuses it with the same message");
    });
  }

  it("K3s_cluster::Version in the module is the same expression (\\A…\\z for ^…$)", () => {
    const m = alias.match(/^type K3s_cluster::Version = Pattern\[\/(.*)\/\]$/m);
    assert.ok(m, "types/version.pp declares K3s_cluster::Version as one Pattern");
    const asJs = m[1].replace(/^\\A/, "^").replace(/\\z$/, "$").replace(/\\\//g, "/");
    assert.equal(asJs, K3S_VERSION_PATTERN);
  });

  it("the module's class takes its k3s_version through that type", () => {
    const init = readFileSync(path.join(root, "puppet/modules/k3s_cluster/manifests/init.pp"), "utf8");
    assert.match(init, /^\s*K3s_cluster::Version\s+\$k3s_version\s*=/m);
  });
});
