// A Puppet agent certname run as a plain host process: its own confdir, vardir and ssldir (Debian keeps the
// ssldir in /var/lib/puppet/ssl whatever the confdir), and `puppet.test` resolved to the bridge address in a
// private mount namespace, so the host's /etc/hosts is never edited.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { cmd, type CmdResult } from "./daemon";
import type { PuppetInfra } from "./index";

export interface HostAgent {
  readonly certname: string;
  readonly dir: string;
  /** `puppet agent -t` against the test puppetserver; exit 0 = no change, 2 = changes, 4/6 = failures. */
  run(extraArgs?: string[]): Promise<CmdResult>;
}

export async function hostAgent(infra: PuppetInfra, certname: string): Promise<HostAgent> {
  const dir = path.join(infra.stateDir, "agents", certname);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.join(dir, "conf"), { recursive: true, mode: 0o700 });
  // Without http_keepalive_timeout = 0 a new agent stalls 30 s after its certificate request.
  await fs.writeFile(path.join(dir, "conf", "puppet.conf"), `[main]
certname = ${certname}
server = ${infra.serverName}
environment = production
vardir = ${dir}/var
ssldir = ${dir}/ssl
rundir = ${dir}/run
logdir = ${dir}/log
publicdir = ${dir}/public
http_keepalive_timeout = 0
report = true
`);
  return {
    certname,
    dir,
    run: (extraArgs = []) => cmd("unshare", ["--mount", "--propagation", "private", "--", "sh", "-c",
      'mount --bind "$0" /etc/hosts && exec "$@"', infra.hostsFile,
      "puppet", "agent", "--test", "--color=false", "--confdir", path.join(dir, "conf"), ...extraArgs],
    { allowFail: true, timeoutMs: 300_000 }),
  };
}
