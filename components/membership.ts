// A node's membership of the cluster, as the first server sees it: a RemoteCommand on that server that
// waits until the node is a Ready member of the declared role, and, when the node leaves the stack,
// cordons and drains it and deletes its Node (k3s then drops a server's etcd member) before the node's own
// bootstrap steps uninstall k3s from it.
import * as pulumi from "@pulumi/pulumi";
import { connectionArgs, type SshTarget } from "./bootstrap";
import { STEP_TIMEOUTS, remoteCommand } from "./bootstrap-scripts";
import { removeNodeScript, waitNodeReadyScript } from "./membership-scripts";
import { RemoteCommand } from "./remote/command";

export interface NodeMembershipArgs {
  /** Kubernetes node name. */
  node: string;
  role: "server" | "agent";
  /** The server that keeps the membership (its connection, host key pinned). */
  via: SshTarget;
  viaName: string;
  timeoutSeconds: number;
  drainSeconds: number;
  /** Changes when the node applied something new (an upgrade): wait for it to be Ready again. */
  revision: pulumi.Input<string>;
}

export class NodeMembership extends RemoteCommand {
  constructor(name: string, a: NodeMembershipArgs, opts: pulumi.CustomResourceOptions) {
    const user = pulumi.output(a.via.user);
    super(name, {
      connection: connectionArgs(a.via, `${a.viaName} (membership of ${a.node})`),
      create: user.apply((sshUser) => remoteCommand(waitNodeReadyScript(a.node, a.role, a.timeoutSeconds),
        { timeoutSeconds: a.timeoutSeconds + 10, asRoot: true, sshUser })),
      delete: user.apply((sshUser) => remoteCommand(removeNodeScript(a.node, a.drainSeconds),
        { timeoutSeconds: a.drainSeconds + STEP_TIMEOUTS.kubeconfig, asRoot: true, sshUser })),
      timeoutSeconds: Math.max(a.timeoutSeconds, a.drainSeconds) + STEP_TIMEOUTS.kubeconfig,
      rerunOn: [a.revision],
    }, opts);
  }
}
