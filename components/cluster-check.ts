// The whole-cluster check after the agents: every declared node listed once, Ready, with its role — the
// module's own `k3s-cluster-verify-cluster` command, run on the first server (the seed's CI "verify-cluster"
// stage). Its verdict becomes the `nodes` output; a node missing or NotReady within tokenTimeout fails
// `pulumi up`, naming it.
import * as pulumi from "@pulumi/pulumi";
import { commandOn, connectionArgs, type SshTarget } from "./bootstrap";
import { shellQuote } from "./bootstrap-scripts";
import { RemoteCommand } from "./remote/command";

export interface NodeStatus {
  name: string;
  role: "server" | "agent";
  /** Ready, or why not: missing, duplicate, wrong-role, NotReady. */
  status: string;
}

export interface ClusterCheckArgs {
  via: SshTarget;
  viaName: string;
  expected: { name: string; role: "server" | "agent" }[];
  timeoutSeconds: number;
  /** Check again when any node changed (its applied revision). */
  revisions: pulumi.Input<string>[];
}

export function verifyClusterScript(expected: ClusterCheckArgs["expected"], timeoutSeconds: number): string {
  const flags = expected.map((n) => `--expect ${shellQuote(`${n.name}=${n.role}`)}`).join(" ");
  return `set -uo pipefail
verdict=$(/usr/local/sbin/k3s-cluster-verify-cluster ${flags} --timeout ${timeoutSeconds} --interval 1 --json)
rc=$?
printf '%s\\n' "$verdict"
if [ "$rc" -ne 0 ]; then
  # Name every node that is not a Ready member of its role, as the failure's message.
  bad=$(VERDICT=$verdict ruby -rjson -e 'v = JSON.parse(ENV["VERDICT"]) rescue (puts ENV["VERDICT"]; exit); puts v["error"] || v["nodes"].reject { |n| n["status"] == "Ready" }.map { |n| "#{n["name"]} (#{n["role"]}): #{n["status"]}" }.join(", ")')
  echo "the cluster does not list every declared node Ready with its role within ${timeoutSeconds}s: $bad" >&2
fi
exit "$rc"
`;
}

/** Runs the check; returns the per-node verdict (not secret). */
export function checkCluster(name: string, a: ClusterCheckArgs, opts: pulumi.CustomResourceOptions): pulumi.Output<NodeStatus[]> {
  const check = new RemoteCommand(name, {
    connection: connectionArgs(a.via, `${a.viaName} (whole-cluster check)`),
    create: commandOn(a.via, verifyClusterScript(a.expected, a.timeoutSeconds), a.timeoutSeconds + 30),
    timeoutSeconds: a.timeoutSeconds + 30,
    captureStdout: true,
    rerunOn: [JSON.stringify(a.expected), ...a.revisions],
  }, opts);
  return pulumi.unsecret(check.stdout).apply((out) => {
    const verdict = JSON.parse(out || "{}") as { nodes?: { name: string; role: "server" | "agent"; status: string }[] };
    return (verdict.nodes ?? []).map((n) => ({ name: n.name, role: n.role, status: n.status }));
  });
}
