// The one rule for the k3s release a cluster installs, shared by the stack configuration
// (k3s-cluster:k3sVersion) and the Puppet module (K3s_cluster::Version in puppet/modules/k3s_cluster/types/version.pp,
// the same expression with \A and \z). Both sides are tested against tests/fixtures/k3s-versions.json.
//
// Only pinned releases: a channel (stable, latest, testing, v1.34) resolves to whatever is current when each
// node installs, so nodes installed minutes apart could run different releases, and Puppet could not tell
// whether the k3s on a node is the one asked for (the module compares `k3s --version` with it on every run).

/** The expression as text, anchored with ^ and $ (no flags). */
export const K3S_VERSION_PATTERN =
  "^v(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-rc[1-9][0-9]*)?\\+k3s[1-9][0-9]*$";

export const K3S_VERSION = new RegExp(K3S_VERSION_PATTERN);

/** The rule in words, for error messages: "<setting> <rule> (got "<value>")". */
export const K3S_VERSION_RULE =
  "must be a pinned k3s release like v1.34.3+k3s1 (vX.Y.Z+k3sN, or vX.Y.Z-rcN+k3sN for a release candidate); " +
  "channels such as stable, latest or v1.34 are refused so that every node installs the same release";

export function isK3sVersion(value: string): boolean {
  return K3S_VERSION.test(value);
}

/** undefined when `value` is a pinned release, else the message naming the setting, the rule and the value. */
export function checkK3sVersion(value: string, setting = "k3s-cluster:k3sVersion"): string | undefined {
  return isK3sVersion(value) ? undefined : `${setting} ${K3S_VERSION_RULE} (got ${JSON.stringify(value)})`;
}
