// Writes components/verify/check-script.ts: the node-side check (the Puppet module's file) as a string
// constant. The ServerToken provider is closure-serialized into Pulumi state and runs where the repository
// is not, so the verifier carries the script's text instead of reading the file at run time.
// Run after editing the script: npx tsx tests/verify/generate-check-script.ts (check-script.test.ts fails until then).
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../..");
export const SCRIPT_FILE = path.join(ROOT, "puppet/modules/k3s_cluster/files/k3s-cluster-check.sh");
export const MODULE_FILE = path.join(ROOT, "components/verify/check-script.ts");

/** The module's text for the script's text: a template literal, so diffs stay readable. */
export function renderModule(script: string): string {
  const literal = script.replace(/\\/g, "\\\\").replace(/`/g, "\\`").replace(/\$\{/g, "\\${");
  return [
    "// Generated from puppet/modules/k3s_cluster/files/k3s-cluster-check.sh by",
    "// `npx tsx tests/verify/generate-check-script.ts`: edit the script, not this file.",
    "// Inlined: the ServerToken provider is serialized into Pulumi state and runs where the repository is not.",
    "export const CHECK_SCRIPT = `" + literal + "`;",
    "",
  ].join("\n");
}

if (require.main === module) {
  fs.writeFileSync(MODULE_FILE, renderModule(fs.readFileSync(SCRIPT_FILE, "utf8")));
  console.log(`wrote ${path.relative(ROOT, MODULE_FILE)}`);
}
