// The shell scripts the bootstrap runs on a node over SSH, generated as text so they can be checked with
// shellcheck and run for real in tests. Every path is a parameter: the same script runs on an EC2 instance
// with the defaults below and in a temporary directory in a test.
//
// No script ever contains a secret: the join token reaches a node only on a command's stdin.

/** Where the bootstrap puts things on a node. */
export interface NodePaths {
  /** Root-owned module path `puppet apply` reads `k3s_cluster` from. */
  modulePath: string;
  /** The manifest declaring `class { 'k3s_cluster': ... }` (no secret in it, 0644). */
  manifestPath: string;
  /** k3s's `token-file`: root-only, 0600, written from stdin. */
  tokenFile: string;
}

export const DEFAULT_PATHS: NodePaths = {
  modulePath: "/etc/k3s-cluster/puppet/modules",
  manifestPath: "/etc/k3s-cluster/site.pp",
  tokenFile: "/etc/rancher/k3s/cluster-token",
};

/** Seconds each step may take before `timeout` stops it; sized for a fresh EC2 instance. */
export const STEP_TIMEOUTS = {
  cloudInit: 900,
  puppetAgent: 600,
  modules: 120,
  tokenFile: 60,
  // puppet apply installs k3s; on a joining node the k3s unit's start blocks until it has joined.
  apply: 1200,
  start: 660,
  kubeconfig: 60,
  uninstall: 300,
} as const;

/** Quotes a value for POSIX shells: the result is one word whatever the value holds. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command text sent over SSH: the script run by bash, bounded by `timeout`, through `sudo -n` when the
 * SSH user is not root (cloud images log in as `ubuntu`/`admin` with passwordless sudo).
 */
export function remoteCommand(script: string, opts: { timeoutSeconds: number; asRoot: boolean; sshUser: string }): string {
  const sudo = opts.asRoot && opts.sshUser !== "root" ? "sudo -n " : "";
  // -k: a step that ignores SIGTERM is killed 10 s later, so nothing hangs past its bound.
  return `timeout -k 10 ${opts.timeoutSeconds} ${sudo}bash -c ${shellQuote(script)}`;
}

const header = "set -euo pipefail\n";

function dirnameOf(p: string): string {
  return p.replace(/\/+[^/]*$/, "") || "/";
}

/** Waits for cloud-init to finish (package mirrors, users, sshd keys) when the image uses it. */
export function waitForCloudInitScript(timeoutSeconds: number): string {
  return `${header}if ! command -v cloud-init >/dev/null 2>&1; then
  echo "no cloud-init on this node: nothing to wait for"
  exit 0
fi
echo "waiting up to ${timeoutSeconds}s for cloud-init to finish"
rc=0
cloud-init status --wait >/dev/null || rc=$?
# 2 = finished with recoverable errors (newer cloud-init): the node is usable.
case "$rc" in
  0|2) echo "cloud-init finished" ;;
  *) echo "cloud-init failed (exit $rc):" >&2; cloud-init status --long >&2 || true; exit "$rc" ;;
esac
`;
}

/** Where the bootstrap notes what it installed itself, so removing the node takes back only that. */
export const INSTALLED_MARKER_DIR = "/var/lib/k3s-cluster-bootstrap";

/** Installs puppet-agent from the OS packages, only when no `puppet` is on the node yet. */
export function installPuppetScript(): string {
  return `${header}export PATH="/opt/puppetlabs/bin:$PATH"
if command -v puppet >/dev/null 2>&1; then
  # Not \`puppet --version\`: starting Ruby costs a second or two on the critical path of every node.
  echo "puppet already installed ($(command -v puppet))"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  echo "installing puppet-agent with apt-get (waiting up to 300s for the dpkg lock)"
  apt-get -o DPkg::Lock::Timeout=300 -q update
  apt-get -o DPkg::Lock::Timeout=300 -q -y --no-install-recommends install puppet-agent
elif command -v dnf >/dev/null 2>&1; then
  echo "installing puppet with dnf"
  dnf -q -y install puppet
else
  echo "neither apt-get nor dnf on this node: install puppet-agent in the image" >&2
  exit 1
fi
install -d -m 0755 ${INSTALLED_MARKER_DIR}
touch ${INSTALLED_MARKER_DIR}/puppet-agent
echo "puppet $(puppet --version) installed"
`;
}

/** Removes puppet-agent only if the bootstrap installed it; a node that came with Puppet keeps it. */
export function removePuppetScript(): string {
  return `${header}if [ ! -e ${INSTALLED_MARKER_DIR}/puppet-agent ]; then
  echo "puppet-agent came with the node: left installed"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q -y purge puppet-agent
elif command -v dnf >/dev/null 2>&1; then
  dnf -q -y remove puppet
fi
rm -rf ${INSTALLED_MARKER_DIR}
echo "puppet-agent removed"
`;
}

/**
 * Installs the module tree that arrives as a tar archive on stdin into the root-owned module path: unpacked
 * into a fresh root-only directory beside the target, checked, then moved into place module by module.
 */
export function installModulesScript(paths: Pick<NodePaths, "modulePath">): string {
  return `${header}target=${shellQuote(paths.modulePath)}
umask 022
install -d -m 0755 "$target"
incoming=$(mktemp -d "$target/.incoming.XXXXXX")
trap 'rm -rf "$incoming"' EXIT
tar -x --no-same-owner --no-same-permissions -C "$incoming" -f -
if [ ! -f "$incoming/k3s_cluster/manifests/init.pp" ]; then
  echo "no k3s_cluster module (manifests/init.pp) in the archive that arrived on stdin" >&2
  exit 1
fi
chown -R root:root "$incoming"
chmod -R u=rwX,go=rX "$incoming"
for dir in "$incoming"/*/; do
  name=$(basename "$dir")
  rm -rf "\${target:?}/$name"
  mv "$dir" "$target/$name"
done
echo "Puppet modules installed in $target: $(find "$target" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f ')"
`;
}

/** Removes the module copy and the manifest (and their directory when nothing else is left in it). */
export function removeModulesScript(paths: Pick<NodePaths, "modulePath" | "manifestPath">): string {
  return `${header}rm -rf ${shellQuote(paths.modulePath)} ${shellQuote(paths.manifestPath)}
for dir in ${shellQuote(dirnameOf(paths.modulePath))} ${shellQuote(dirnameOf(paths.manifestPath))}; do
  rmdir "$dir" 2>/dev/null || true
done
echo "Puppet modules and manifest removed"
`;
}

/**
 * Writes the join token read from stdin to k3s's token file: created under umask 077 as a temp file in the
 * same directory, owned by root, mode 0600, then renamed into place, so no reader ever sees it readable or
 * half-written. The token never appears in this text, the environment or the output.
 */
export function writeTokenFileScript(tokenFile: string): string {
  return `${header}umask 077
file=${shellQuote(tokenFile)}
dir=$(dirname "$file")
install -d -m 0755 "$dir"
tmp=$(mktemp "$dir/.cluster-token.XXXXXX")
trap 'rm -f "$tmp"' EXIT
head -c 4096 > "$tmp"
if [ ! -s "$tmp" ]; then
  echo "no token arrived on stdin: $file left unchanged" >&2
  exit 1
fi
if [ "$(grep -c '' "$tmp")" -ne 1 ] || grep -q '[[:space:]]' <(tr -d '\\n' < "$tmp"); then
  echo "the token on stdin is not one line without spaces: $file left unchanged" >&2
  exit 1
fi
chown root:root "$tmp"
chmod 0600 "$tmp"
mv -f "$tmp" "$file"
trap - EXIT
echo "token written to $file (root, 0600)"
`;
}

/**
 * A rotated token reaching a server: the token file is rewritten as on the first run, then k3s restarts so
 * the server stops accepting the old token (k3s keeps it in memory until then). Agents need no restart: they
 * only present the token when they join.
 */
export function rewriteServerTokenFileScript(tokenFile: string, unit = "k3s"): string {
  return `${writeTokenFileScript(tokenFile)}if systemctl is-active --quiet ${unit}; then
  echo "restarting ${unit} so that only the new token is accepted"
  systemctl restart --no-block ${unit}
  sleep 1
fi
`;
}

/** Removes the join token file. */
export function removeTokenFileScript(tokenFile: string): string {
  return `${header}rm -f ${shellQuote(tokenFile)}
echo "token file removed"
`;
}

/**
 * Takes k3s off the node: its own uninstall script when the install script left one (it also tears down
 * networking and containers), then whatever the binary install or the module left: units, binary, data,
 * configuration, token and the module's facts. Safe to run twice.
 */
export function uninstallK3sScript(paths: Pick<NodePaths, "tokenFile">): string {
  return `${header}for script in /usr/local/bin/k3s-uninstall.sh /usr/local/bin/k3s-agent-uninstall.sh; do
  if [ -x "$script" ]; then
    echo "running $script"
    "$script" || echo "$script exited $?: removing the rest by hand" >&2
  fi
done
for unit in k3s k3s-agent; do
  if systemctl cat "$unit.service" >/dev/null 2>&1; then
    systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
  fi
done
if [ -x /usr/local/bin/k3s-killall.sh ]; then /usr/local/bin/k3s-killall.sh >/dev/null 2>&1 || true; fi
rm -f /etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service \
  /etc/systemd/system/k3s.service.env /etc/systemd/system/k3s-agent.service.env \
  /usr/local/bin/k3s /usr/local/bin/k3s-install.sh /usr/local/bin/k3s-killall.sh \
  /usr/local/bin/k3s-uninstall.sh /usr/local/bin/k3s-agent-uninstall.sh /usr/local/bin/k3s-collect-cluster-info.sh \\
  /usr/local/bin/k3s-cluster-* /usr/local/sbin/k3s-cluster-*
for link in kubectl crictl ctr; do
  if [ -L "/usr/local/bin/$link" ] && [ "$(readlink "/usr/local/bin/$link")" = k3s ]; then rm -f "/usr/local/bin/$link"; fi
done
systemctl daemon-reload || true
rm -rf /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/k3s-cluster /etc/facter/facts.d/k3s_*.yaml /tmp/k3s_cluster_info_*
rm -f ${shellQuote(paths.tokenFile)}
rmdir /etc/rancher /var/lib/rancher 2>/dev/null || true
echo "k3s removed from this node"
`;
}

/**
 * Writes the manifest read from stdin and applies it. `--detailed-exitcodes` makes Puppet report failed
 * resources (4, 6) instead of exiting 0; 2 only means "changes were made".
 */
export function puppetApplyScript(paths: Pick<NodePaths, "manifestPath" | "modulePath">): string {
  return `${header}export PATH="/opt/puppetlabs/bin:$PATH"
manifest=${shellQuote(paths.manifestPath)}
modules=${shellQuote(paths.modulePath)}
umask 022
install -d -m 0755 "$(dirname "$manifest")"
tmp=$(mktemp "$manifest.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
if [ ! -s "$tmp" ]; then
  echo "no manifest arrived on stdin" >&2
  exit 1
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$manifest"
trap - EXIT
base=$(puppet config print basemodulepath 2>/dev/null || true)
echo "puppet apply $manifest (modules: $modules)"
rc=0
puppet apply --detailed-exitcodes --color=false --modulepath="$modules\${base:+:$base}" "$manifest" || rc=$?
case "$rc" in
  0) echo "puppet apply finished: nothing to change" ;;
  2) echo "puppet apply finished: changes applied" ;;
  *) echo "puppet apply failed with exit code $rc (4: failed resources, 6: changes and failures)" >&2; exit "$rc" ;;
esac
`;
}

/**
 * Starts (or, after a change of its binary or configuration, restarts) the k3s unit with the module's own
 * start script, and waits up to `waitSeconds` for it to turn active (0: queue the start and return — the
 * verification of a server does the waiting and names the step). A unit already running as configured is
 * left alone.
 */
export function startUnitScript(unit: "k3s" | "k3s-agent", waitSeconds: number): string {
  return `${header}export PATH="/usr/local/sbin:/usr/local/bin:$PATH"
if k3s-cluster-start --check ${unit}; then
  echo "${unit} is running with its current binary and configuration"
  exit 0
fi
k3s-cluster-start ${unit} ${waitSeconds}
`;
}

/** Prints the admin kubeconfig k3s wrote; run with logging off, its stdout is a secret output. */
export function readKubeconfigScript(path = "/etc/rancher/k3s/k3s.yaml"): string {
  return `${header}file=${shellQuote(path)}
if [ ! -s "$file" ]; then
  echo "$file is missing or empty: k3s has not written its admin kubeconfig" >&2
  exit 1
fi
cat "$file"
`;
}
