// Puppet bootstrap of one node over SSH: wait for cloud-init → install puppet-agent → upload and install the
// k3s_cluster module → (write the join token from stdin) → write the manifest and `puppet apply` it.
// Each step is one remote.Command so `pulumi up` shows where a node is and which step failed.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { remote, types } from "@pulumi/command";
import {
  DEFAULT_PATHS,
  NodePaths,
  STEP_TIMEOUTS,
  installModulesScript,
  installPuppetScript,
  puppetApplyScript,
  remoteCommand,
  waitForCloudInitScript,
  writeTokenFileScript,
} from "./bootstrap-scripts";

/** How the bootstrap (and the verification) reach a node. */
export interface SshTarget {
  host: pulumi.Input<string>;
  user: pulumi.Input<string>;
  /** PEM text; always handled as a secret. */
  privateKey: pulumi.Input<string>;
  /** `ssh-ed25519 AAAA…` when known: without it the host key is not checked. */
  hostKey?: pulumi.Input<string>;
  port?: number;
}

// A fresh EC2 instance accepts SSH 30–90 s after it reports running. The provider's default (10 dial
// errors, backoff capped at 5 s) gives up after about 8 s; 60 errors is over five minutes of refused dials.
export const DIAL_ERROR_LIMIT = 60;
export const PER_DIAL_TIMEOUT_SECONDS = 30;

export function connectionArgs(t: SshTarget): types.input.remote.ConnectionArgs {
  return {
    host: t.host,
    port: t.port ?? 22,
    user: t.user,
    privateKey: pulumi.secret(t.privateKey),
    hostKey: t.hostKey,
    dialErrorLimit: DIAL_ERROR_LIMIT,
    perDialTimeout: PER_DIAL_TIMEOUT_SECONDS,
  };
}

/** sha256 over every file of a directory tree (names and contents): re-runs the install when a module changes. */
export function directoryDigest(dir: string): string {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`the Puppet modules directory ${path.resolve(dir)} does not exist: run pulumi from the project root`);
  }
  const hash = createHash("sha256");
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) hash.update(`${path.relative(dir, p)}\0`).update(fs.readFileSync(p)).update("\0");
    }
  };
  walk(dir);
  return hash.digest("hex");
}

export interface NodeBootstrapArgs {
  ssh: SshTarget;
  /** The rendered `class { 'k3s_cluster': … }` manifest (see puppet-manifest.ts). */
  manifest: pulumi.Input<string>;
  /** Join token for k3s's token-file; written from stdin, never logged. Absent on a first server that generates it. */
  token?: pulumi.Input<string>;
  /** Local Puppet module directory, relative to the project (the state then does not depend on the checkout path). */
  modulesDir?: string;
  paths?: NodePaths;
  /**
   * Resources the join must wait for: the token file and `puppet apply` (which starts k3s) run only after
   * them, while the slow preparation (cloud-init, packages, modules) runs in parallel with other nodes.
   * A component's `dependsOn` does not reach its children, hence this argument.
   */
  joinAfter?: pulumi.Resource[];
}

export class NodeBootstrap extends pulumi.ComponentResource {
  /** The last step: the node has applied its manifest (k3s installed and started). */
  readonly applied: remote.Command;
  readonly tokenFile?: remote.Command;

  /** `node` is the node's name: the component is `<node>-bootstrap`, its steps `<node>-<step>`. */
  constructor(node: string, args: NodeBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k3s:index:NodeBootstrap", `${node}-bootstrap`, {}, opts);
    const name = node;
    const paths = args.paths ?? DEFAULT_PATHS;
    const modulesDir = args.modulesDir ?? "puppet/modules";
    const digest = directoryDigest(modulesDir);
    const connection = connectionArgs(args.ssh);
    const user = pulumi.output(args.ssh.user);
    const cmd = (script: string, timeoutSeconds: number, asRoot: boolean) =>
      user.apply((sshUser) => remoteCommand(script, { timeoutSeconds, asRoot, sshUser }));
    // Previous stdout/stderr would be sent as SSH env requests, which stock sshd refuses.
    const common = { connection, addPreviousOutputInEnv: false };
    const child = { parent: this };

    const cloudInit = new remote.Command(`${name}-cloud-init`, {
      ...common,
      create: cmd(waitForCloudInitScript(STEP_TIMEOUTS.cloudInit), STEP_TIMEOUTS.cloudInit, false),
      logging: "stdoutAndStderr",
    }, child);

    const puppetAgent = new remote.Command(`${name}-puppet-agent`, {
      ...common,
      create: cmd(installPuppetScript(), STEP_TIMEOUTS.puppetAgent, true),
      logging: "stdoutAndStderr",
    }, { ...child, dependsOn: [cloudInit] });

    const upload = new remote.CopyToRemote(`${name}-modules-upload`, {
      connection,
      source: new pulumi.asset.FileArchive(modulesDir),
      remotePath: paths.staging,
      triggers: [digest],
    }, { ...child, dependsOn: [cloudInit] });

    const modules = new remote.Command(`${name}-modules`, {
      ...common,
      create: user.apply((sshUser) =>
        remoteCommand(installModulesScript(paths, sshUser), { timeoutSeconds: STEP_TIMEOUTS.modules, asRoot: true, sshUser })),
      logging: "stdoutAndStderr",
      triggers: [digest],
    }, { ...child, dependsOn: [puppetAgent, upload] });

    const joinAfter = args.joinAfter ?? [];
    const applyDeps: pulumi.Resource[] = [modules, ...joinAfter];
    if (args.token !== undefined) {
      this.tokenFile = new remote.Command(`${name}-token-file`, {
        ...common,
        create: cmd(writeTokenFileScript(paths.tokenFile), STEP_TIMEOUTS.tokenFile, true),
        stdin: pulumi.secret(args.token),
        // Nothing this step prints is a secret, but a step that touches the token logs nothing by rule.
        logging: "none",
      // Commands echo their inputs as outputs; keep the echoed token secret whatever the provider does.
      }, { ...child, dependsOn: [cloudInit, ...joinAfter], additionalSecretOutputs: ["stdin"] });
      applyDeps.push(this.tokenFile);
    }

    this.applied = new remote.Command(`${name}-puppet-apply`, {
      ...common,
      create: cmd(puppetApplyScript(paths), STEP_TIMEOUTS.apply, true),
      stdin: args.manifest,
      logging: "stdoutAndStderr",
      triggers: [digest],
    }, { ...child, dependsOn: applyDeps });

    this.registerOutputs({ applied: this.applied.id });
  }
}
