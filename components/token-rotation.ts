// Rotating the cluster's join token through the ordinary `pulumi up`: a new `k3s-cluster:tokenRotation` value
// makes the first server run `k3s token rotate`, which authenticates with the server's own token file and
// lets the server draw the new password itself — no token ever reaches a command line or leaves the server
// here. k3s keeps accepting the old token until a server restarts, so each server restarts in turn (the
// first right after rotating, the others when their token file is rewritten) and is verified again before
// the next; agents only get their token file rewritten. No node leaves, and the old token then gets 401.
import * as pulumi from "@pulumi/pulumi";
import { commandOn, connectionArgs, type SshTarget } from "./bootstrap";
import { shellQuote } from "./bootstrap-scripts";
import { RemoteCommand } from "./remote/command";

/** Rotates the server token to one the server generates, and checks that the token file changed. */
export function rotateTokenScript(dataDir = "/var/lib/rancher/k3s"): string {
  return `set -euo pipefail
export PATH="/usr/local/bin:$PATH"
file=${shellQuote(`${dataDir}/server/token`)}
before=$(sha256sum "$file")
k3s token rotate --data-dir ${shellQuote(dataDir)} >/dev/null
if [ "$(sha256sum "$file")" = "$before" ]; then
  echo "k3s token rotate finished but $file did not change" >&2
  exit 1
fi
echo "server token rotated; restarting k3s so that only the new token is accepted"
systemctl restart --no-block k3s
sleep 1
`;
}

export interface TokenRotationArgs {
  /** The `k3s-cluster:tokenRotation` value ("" when unset): any change rotates; a new cluster's token is new already. */
  rotation: string;
  /** The first server, host key pinned. */
  server: SshTarget;
  serverName: string;
  /** Wait for the server's bootstrap before rotating. */
  after: pulumi.Input<pulumi.Resource>[];
}

/** The rotation step; the first server's verification waits for it and runs again when it re-ran. */
export function rotateToken(name: string, a: TokenRotationArgs, parent: pulumi.Resource): RemoteCommand {
  return new RemoteCommand(`${name}-rotation`, {
    connection: connectionArgs(a.server, a.serverName),
    // A new cluster's token is fresh: creating the step only records the label; changing it rotates.
    create: "echo token rotation label recorded",
    update: commandOn(a.server, rotateTokenScript(), 60),
    timeoutSeconds: 60,
    rerunOn: [a.rotation],
  }, { parent, dependsOn: a.after });
}
