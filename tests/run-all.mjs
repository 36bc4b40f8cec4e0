#!/usr/bin/env node
// `npm test`: every suite, in the order the system is built — config and graph under mocks, the k3s
// simulator, the seven-step verification over real SSH, the Puppet module on real Puppet, and the
// end-to-end rehearsal. Stops at the first failing suite.
import { spawnSync } from "node:child_process";

const suites = [
  ["typecheck", ["npx", "tsc", "--noEmit"]],
  ["unit", ["npm", "run", "-s", "test:unit"]],
  ["k3s-sim", ["npm", "run", "-s", "test:sim"]],
  ["rig", ["npm", "run", "-s", "test:rig"]],
  ["verify", ["npm", "run", "-s", "test:verify"]],
  ["orchestration", ["npm", "run", "-s", "test:orchestration"]],
  ["puppet (static)", ["npm", "run", "-s", "test:puppet"]],
  ["puppet (real puppetserver + PuppetDB)", ["npm", "run", "-s", "test:puppet-infra"]],
  ["e2e", ["npm", "run", "-s", "test:e2e"]],
];
for (const [name, [cmd, ...args]] of suites) {
  console.log(`\n=== suite: ${name} ===`);
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`suite ${name} failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}
