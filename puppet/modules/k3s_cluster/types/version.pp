# @summary A pinned k3s release: `vX.Y.Z+k3sN` (or `vX.Y.Z-rcN+k3sN`), e.g. `v1.34.3+k3s1`.
#
# Channels (`stable`, `latest`, `v1.34`) are refused: each node would install whatever the channel points
# at when it runs, and Puppet could not tell whether the installed k3s is the one asked for. The same rule
# as the Pulumi program's `k3s-cluster:k3sVersion` (components/k3s-version.ts); both are tested against
# tests/fixtures/k3s-versions.json.
type K3s_cluster::Version = Pattern[/\Av(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-rc[1-9][0-9]*)?\+k3s[1-9][0-9]*\z/]
