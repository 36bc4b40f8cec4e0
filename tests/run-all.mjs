#!/usr/bin/env node
// `npm test`: every suite, in the order the system is built — config and graph under mocks, the k3s
// simulator, the test nodes, the seven-step verification over real SSH, the Puppet module on real Puppet,
// and the program on the real Pulumi engine. Stops at the first failing suite.
//
// It sets up what the suites need first, so it works alone on a fresh machine: as root it installs the
// Debian packages (tests/setup/debian-packages.txt) and builds the Pulumi toolchain from Go modules
// (npm run setup:pulumi, cached outside the checkout); as anyone else it stops at once saying what to run.
import { spawnSync } from "node:child_process";

function step(name, cmd, args) {
  console.log(`\n=== ${name} ===`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`${name} failed (exit ${r.status ?? r.signal}) after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    process.exit(r.status ?? 1);
  }
  console.log(`=== ${name}: passed in ${((Date.now() - started) / 1000).toFixed(0)} s ===`);
}

if (process.getuid && process.getuid() !== 0) {
  console.error("npm test boots systemd-nspawn test nodes and real Puppet services: run it as root (sudo npm test), " +
    "or run the unprivileged suites alone: npm run typecheck && npm run test:unit && npm run test:puppet");
  process.exit(1);
}

step("setup: Debian packages", "bash", ["tests/setup/install-debian-packages.sh"]);
step("setup: Pulumi toolchain", "npx", ["tsx", "scripts/pulumi-toolchain.ts"]);

const suites = [
  ["suite: typecheck", ["npx", "tsc", "--noEmit"]],
  ["suite: unit", ["npm", "run", "-s", "test:unit"]],
  ["suite: k3s-sim", ["npm", "run", "-s", "test:sim"]],
  ["suite: rig", ["npm", "run", "-s", "test:rig"]],
  ["suite: verify", ["npm", "run", "-s", "test:verify"]],
  ["suite: puppet (static)", ["npm", "run", "-s", "test:puppet"]],
  ["suite: puppet (real puppetserver + PuppetDB)", ["npm", "run", "-s", "test:puppet-infra"]],
  ["suite: engine (real pulumi on test nodes)", ["npm", "run", "-s", "test:engine"]],
];
for (const [name, [cmd, ...args]] of suites) step(name, cmd, args);
