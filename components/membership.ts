// A node's membership of the cluster, as the first server sees it: a RemoteCommand on that server that
// waits until the node is a Ready member of the declared role, and, when the node leaves the stack,
// cordons and drains it and deletes its Node (k3s then drops a server's etcd member) before the node's own
// bootstrap steps uninstall k3s from it.
import * as pulumi from "@pulumi/pulumi";
import { commandOn, connectionArgs, type SshTarget } from "./bootstrap";
import { STEP_TIMEOUTS } from "./bootstrap-scripts";
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
    super(name, {
      connection: connectionArgs(a.via, `${a.viaName} (membership of ${a.node})`),
      create: commandOn(a.via, waitNodeReadyScript(a.node, a.role, a.timeoutSeconds), a.timeoutSeconds + 10),
      delete: commandOn(a.via, removeNodeScript(a.node, a.drainSeconds), a.drainSeconds + STEP_TIMEOUTS.kubeconfig),
      timeoutSeconds: Math.max(a.timeoutSeconds, a.drainSeconds) + STEP_TIMEOUTS.kubeconfig,
      rerunOn: [a.revision],
    }, opts);
  }
}
