// Puppet bootstrap of one node over SSH: wait for cloud-init → install puppet-agent → stream and install
// the k3s_cluster module → (write the join token from stdin) → write the manifest and `puppet apply` it.
// Each step is one RemoteCommand, so `pulumi up` shows where a node is and which step failed, and each
// step's `delete` undoes it: `pulumi destroy` (or removing the node) gives a machine back clean.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand, type RemoteConnectionArgs } from "./remote/command";
import {
  DEFAULT_PATHS,
  NodePaths,
  STEP_TIMEOUTS,
  installModulesScript,
  installPuppetScript,
  puppetApplyScript,
  remoteCommand,
  removeModulesScript,
  removePuppetScript,
  removeTokenFileScript,
  rewriteServerTokenFileScript,
  startUnitScript,
  uninstallK3sScript,
  waitForCloudInitScript,
  writeTokenFileScript,
} from "./bootstrap-scripts";

/** How the bootstrap (and the verification) reach a node. */
export interface SshTarget {
  host: pulumi.Input<string>;
  user: pulumi.Input<string>;
  /** PEM text; always handled as a secret. */
  privateKey: pulumi.Input<string>;
  /** `SHA256:…` when known in advance; otherwise the key seen at first contact is pinned. */
  hostKey?: pulumi.Input<string>;
  port?: pulumi.Input<number>;
}

// A fresh EC2 instance accepts SSH 30–90 s after it reports running; keep dialing for five minutes.
export const DIAL_TIMEOUT_SECONDS = 300;

export function connectionArgs(t: SshTarget, node: string): RemoteConnectionArgs {
  return {
    host: t.host,
    port: t.port ?? 22,
    user: t.user,
    privateKey: pulumi.secret(t.privateKey),
    hostKey: t.hostKey,
    dialTimeout: DIAL_TIMEOUT_SECONDS,
    node,
  };
}

/** The command text that runs `script` on `t` (as root unless told otherwise), bounded by `timeoutSeconds`. */
export function commandOn(t: SshTarget, script: string, timeoutSeconds: number, asRoot = true): pulumi.Output<string> {
  return pulumi.output(t.user).apply((sshUser) => remoteCommand(script, { timeoutSeconds, asRoot, sshUser }));
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
  joinAfter?: pulumi.Input<pulumi.Resource>[];
  /** The node runs a k3s server (unit `k3s`; a rotated token restarts it); otherwise an agent (`k3s-agent`). */
  server?: boolean;
  /** Seconds the start waits for the unit to turn active (agents: their join); 0 queues it (servers are verified). */
  startWaitSeconds?: number;
  /**
   * Resources the Puppet run waits for: other nodes apply after the first server's, so that its Puppet run —
   * on the critical path — does not compete with theirs, which then overlap its start-up instead.
   */
  prepareAfter?: pulumi.Input<pulumi.Resource>[];
  /** Resources every step waits for (the cluster policy: a refused change touches no node). */
  after?: pulumi.Input<pulumi.Resource>[];
  /**
   * A re-apply (upgrade, new module) rolled through the cluster: scripts run before and after it on a server
   * (`via`, e.g. drain and uncordon), with at most `limit` nodes of `group` re-applying at once.
   */
  rolling?: { via: SshTarget; viaName: string; before: string; after: string; group: string; limit: number; timeoutSeconds: number };
}

function rollingCommands(r: NonNullable<NodeBootstrapArgs["rolling"]>) {
  return {
    connection: connectionArgs(r.via, r.viaName),
    before: commandOn(r.via, r.before, r.timeoutSeconds),
    after: commandOn(r.via, r.after, r.timeoutSeconds),
    group: r.group,
    limit: r.limit,
    timeoutSeconds: r.timeoutSeconds + 30,
  };
}

export class NodeBootstrap extends pulumi.ComponentResource {
  /** The last step: k3s installed, configured and started on the node (its join). */
  readonly applied: RemoteCommand;
  readonly tokenFile?: RemoteCommand;
  /** The Puppet run: k3s installed and configured, not started. */
  readonly prepared: RemoteCommand;
  /** `SHA256:…` of the node's host key, pinned at first contact; every later connection must meet it. */
  readonly hostKey: pulumi.Output<string>;
  /** Changes whenever what the node applies changes (manifest or module): its k3s may have restarted. */
  readonly revision: pulumi.Output<string>;

  /** `node` is the node's name: the component is `<node>-bootstrap`, its steps `<node>-<step>`. */
  constructor(node: string, args: NodeBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k3s:index:NodeBootstrap", `${node}-bootstrap`, {}, opts);
    const name = node;
    const paths = args.paths ?? DEFAULT_PATHS;
    const modulesDir = args.modulesDir ?? "puppet/modules";
    const digest = directoryDigest(modulesDir);
    const cmd = (script: string, timeoutSeconds: number, asRoot = true) => commandOn(args.ssh, script, timeoutSeconds, asRoot);
    const child = { parent: this };

    // First contact: records the host key every later step (and the verification) insists on.
    const cloudInit = new RemoteCommand(`${name}-cloud-init`, {
      connection: connectionArgs(args.ssh, node),
      create: cmd(waitForCloudInitScript(STEP_TIMEOUTS.cloudInit), STEP_TIMEOUTS.cloudInit, false),
      timeoutSeconds: STEP_TIMEOUTS.cloudInit,
    }, { ...child, dependsOn: args.after ?? [] });
    this.hostKey = args.ssh.hostKey ? pulumi.output(args.ssh.hostKey) : cloudInit.hostKey;
    const connection = connectionArgs({ ...args.ssh, hostKey: this.hostKey }, node);

    const puppetAgent = new RemoteCommand(`${name}-puppet-agent`, {
      connection,
      create: cmd(installPuppetScript(), STEP_TIMEOUTS.puppetAgent),
      delete: cmd(removePuppetScript(), STEP_TIMEOUTS.puppetAgent),
      timeoutSeconds: STEP_TIMEOUTS.puppetAgent,
    }, { ...child, dependsOn: [cloudInit] });

    // The module tree travels as a tar stream on stdin straight into a root-owned directory: nothing is
    // staged where another user could swap it.
    const modules = new RemoteCommand(`${name}-modules`, {
      connection,
      create: cmd(installModulesScript(paths), STEP_TIMEOUTS.modules),
      delete: cmd(removeModulesScript(paths), STEP_TIMEOUTS.modules),
      archive: { dir: modulesDir, digest },
      timeoutSeconds: STEP_TIMEOUTS.modules,
    }, { ...child, dependsOn: [puppetAgent] });

    // Everything a node can do before it may join runs now, alongside the other nodes: install k3s at the
    // pinned release, write its configuration (naming the token file), prepare the unit — Puppet leaves it
    // stopped. Behind the gate remain only the token file and the start.
    const prepared = new RemoteCommand(`${name}-puppet-apply`, {
      connection,
      create: cmd(puppetApplyScript(paths), STEP_TIMEOUTS.apply),
      delete: cmd(uninstallK3sScript(paths), STEP_TIMEOUTS.uninstall),
      stdin: args.manifest,
      timeoutSeconds: STEP_TIMEOUTS.apply,
      // A changed module is applied again in place; a replacement would uninstall k3s behind the new apply.
      rerunOn: [digest],
    }, { ...child, dependsOn: [modules, ...(args.prepareAfter ?? [])] });

    const joinAfter = args.joinAfter ?? [];
    const startDeps: pulumi.Input<pulumi.Resource>[] = [prepared, ...joinAfter];
    if (args.token !== undefined) {
      this.tokenFile = new RemoteCommand(`${name}-token-file`, {
        connection,
        create: cmd(writeTokenFileScript(paths.tokenFile), STEP_TIMEOUTS.tokenFile),
        // A server restarts on a new token so that the old one stops working; an agent only rewrites it.
        update: args.server ? cmd(rewriteServerTokenFileScript(paths.tokenFile), STEP_TIMEOUTS.tokenFile) : undefined,
        delete: cmd(removeTokenFileScript(paths.tokenFile), STEP_TIMEOUTS.tokenFile),
        stdin: pulumi.secret(args.token),
        // Nothing this step prints is a secret, but a step that touches the token logs nothing by rule.
        logging: "none",
        timeoutSeconds: STEP_TIMEOUTS.tokenFile,
      }, { ...child, dependsOn: [cloudInit, ...joinAfter] });
      startDeps.push(this.tokenFile);
    }

    const revision = pulumi.output(args.manifest).apply((m) => createHash("sha256").update(`${digest}\0${m}`).digest("hex"));
    // The join: start the unit (restart it when its binary or configuration changed — an upgrade).
    this.applied = new RemoteCommand(`${name}-start`, {
      connection,
      create: cmd(startUnitScript(args.server ? "k3s" : "k3s-agent", args.startWaitSeconds ?? 0), STEP_TIMEOUTS.start),
      timeoutSeconds: STEP_TIMEOUTS.start,
      rerunOn: [revision],
      around: args.rolling && rollingCommands(args.rolling),
    }, { ...child, dependsOn: startDeps });

    this.revision = revision;
    this.prepared = prepared;
    this.registerOutputs({ applied: this.applied.id, hostKey: this.hostKey, revision: this.revision });
  }
}
