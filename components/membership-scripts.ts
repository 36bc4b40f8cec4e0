// Scripts run on a server about one node of the cluster: wait until it is a Ready member, and take it out
// of the cluster (cordon, drain, delete its Node — for a server, k3s then removes its etcd member).
// Generated as text like bootstrap-scripts.ts, so tests run them for real; no secret is ever in them.
import { shellQuote } from "./bootstrap-scripts";

const header = "set -euo pipefail\nexport PATH=\"/usr/local/bin:$PATH\"\n";

/** Waits until `node` is listed Ready with the expected role; prints its name, role and version. */
export function waitNodeReadyScript(node: string, role: "server" | "agent", timeoutSeconds: number): string {
  return `${header}node=${shellQuote(node)}
role=${shellQuote(role)}
echo "waiting up to ${timeoutSeconds}s for node $node to be listed Ready as ${role === "agent" ? "an" : "a"} $role"
deadline=$((SECONDS + ${timeoutSeconds}))
state="not listed"
while :; do
  if line=$(k3s kubectl get node "$node" 2>/dev/null | tail -n +2) && [ -n "$line" ]; then
    read -r _ status roles _ version <<<"$line"
    is_server=no
    case "$roles" in *control-plane*) is_server=yes ;; esac
    if [ "$role" = server ] && [ "$is_server" = no ]; then
      state="listed with roles $roles, not as a server"
    elif [ "$role" = agent ] && [ "$is_server" = yes ]; then
      state="listed with roles $roles, not as an agent"
    elif [ "\${status%%,*}" = Ready ]; then
      echo "node $node is Ready ($roles, $version)"
      exit 0
    else
      state="$status"
    fi
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "node $node is not a Ready $role after ${timeoutSeconds}s: $state" >&2
    exit 1
  fi
  sleep 1
done
`;
}

/**
 * Shell lines that cordon and drain "$node" within `drainSeconds`; on failure they name the pods that would
 * not leave, uncordon the node (it keeps serving) and exit 1. `drainSeconds` 0: nothing.
 */
function drainLines(drainSeconds: number): string {
  if (drainSeconds <= 0) return "";
  return `echo "cordoning and draining $node (up to ${drainSeconds}s)"
k3s kubectl cordon "$node"
if ! out=$(k3s kubectl drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout=${drainSeconds}s 2>&1); then
  # kubectl names each pod it could not evict as: error when evicting pods/"NAME" -n "NAMESPACE" ...
  pods=$(sed -nE 's/.*evicting pods\\/"([^"]+)" -n "([^"]+)".*/\\2\\/\\1/p' <<<"$out" | sort -u | paste -sd, - || true)
  echo "node $node could not be drained within ${drainSeconds}s; pods that would not leave: \${pods:-(see below)}" >&2
  tail -n 5 <<<"$out" >&2
  k3s kubectl uncordon "$node" >/dev/null 2>&1 || true
  echo "node $node was uncordoned and keeps serving" >&2
  exit 1
fi
tail -n 1 <<<"$out"
`;
}

/**
 * Takes `node` out of the cluster: cordon, drain (bounded; on failure it names the pods that would not
 * leave and uncordons the node, which keeps serving), delete its Node. A node already gone is fine.
 * `drainSeconds` 0 skips the drain.
 */
export function removeNodeScript(node: string, drainSeconds: number): string {
  return `${header}node=${shellQuote(node)}
if ! k3s kubectl get node "$node" >/dev/null 2>&1; then
  echo "node $node is not in the cluster: nothing to remove"
  exit 0
fi
${drainLines(drainSeconds)}k3s kubectl delete node "$node"
echo "node $node removed from the cluster"
`;
}

/**
 * Before an agent changes (an upgrade, a new module): every server must run `release` already — agents
 * never run ahead of the control plane — then the agent is cordoned and drained.
 */
export function beforeAgentUpdateScript(node: string, release: string, waitSeconds: number, drainSeconds: number): string {
  return `${header}node=${shellQuote(node)}
release=${shellQuote(release)}
echo "waiting up to ${waitSeconds}s for every server to run $release before $node changes"
deadline=$((SECONDS + ${waitSeconds}))
while :; do
  behind=$(k3s kubectl get nodes 2>/dev/null | tail -n +2 | awk -v r="$release" '$3 ~ /control-plane/ && $5 != r { print $1 " (" $5 ")" }' | paste -sd, - || true)
  [ -z "$behind" ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "servers not at $release after ${waitSeconds}s: $behind; $node left as it is" >&2
    exit 1
  fi
  sleep 1
done
${drainLines(drainSeconds)}`;
}

/** After an agent changed: uncordon it and wait until it is Ready again at `release`. */
export function afterAgentUpdateScript(node: string, release: string, waitSeconds: number): string {
  return `${header}node=${shellQuote(node)}
release=${shellQuote(release)}
k3s kubectl uncordon "$node"
echo "waiting up to ${waitSeconds}s for $node to be Ready at $release"
deadline=$((SECONDS + ${waitSeconds}))
while :; do
  line=$(k3s kubectl get node "$node" 2>/dev/null | tail -n +2 || true)
  read -r _ status _ _ version <<<"$line" || true
  if [ "\${status:-}" = Ready ] && [ "\${version:-}" = "$release" ]; then
    echo "node $node is Ready at $release"
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "node $node did not come back Ready at $release within ${waitSeconds}s (status \${status:-not listed}, version \${version:-unknown})" >&2
    exit 1
  fi
  sleep 1
done
`;
}
