#!/usr/bin/env bash
# Static checks of the k3s_cluster Puppet module: parser, lint, rspec-puppet (classes, type, provider),
# shellcheck of every script as rendered, and bats tests of the collection script and the cluster check. No service needed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "$here/../../puppet/modules/k3s_cluster" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work   # puppet writes its per-user state under $HOME

for tool in puppet puppet-lint rspec shellcheck bats ruby openssl python3 curl; do
  command -v "$tool" >/dev/null || { echo "test:puppet: $tool is missing (tests/setup/install-debian-packages.sh installs it)" >&2; exit 1; }
done

step() { printf '\n--- %s\n' "$*"; }

step "puppet parser validate"
puppet parser validate "$module"/manifests/*.pp
for t in "$module"/templates/*.epp; do puppet epp validate "$t"; done

step "puppet-lint"
puppet-lint --fail-on-warnings "$module/manifests"

step "rspec-puppet"
(cd "$module" && rspec --pattern 'spec/{classes,defines,functions,type_aliases,unit}/**/*_spec.rb')

step "scripts as rendered, through shellcheck"
render() { # source role
  puppet epp render "$module/templates/collect-cluster-info.sh.epp" --values \
    "{cluster_name => 'demo', role => '$2', certname => 'node-a1', source => '$1', wait_for_token => true, token_timeout => 300}" \
    2> >(grep -v 'Permission denied @ rb_sysopen - /proc/1/environ' >&2)
}
for source in puppetdb puppetserver; do
  for role in agent server; do
    render "$source" "$role" > "$work/collect-$source-$role.sh"
    chmod 0700 "$work/collect-$source-$role.sh"
  done
done
shellcheck "$work"/collect-*.sh "$module/files/k3s-cluster-start.sh" "$module/files/k3s-cluster-verify-cluster.sh" \
  "$module/files/k3s-cluster-check.sh"
echo "shellcheck: clean"

step "bats: the collection script and the whole-cluster check"
SCRIPT_DIR=$work bats "$here/static/collect-cluster-info.bats"
VERIFY=$module/files/k3s-cluster-verify-cluster.sh bats "$here/static/verify-cluster.bats"

step "REFERENCE.md documents every class parameter"
missing=0
for p in $(sed -n '/^class k3s_cluster (/,/^) {/p' "$module/manifests/init.pp" | grep -o '\$[a-z_]* *=' | tr -d '$= '); do
  grep -qx "##### \`$p\`" "$module/REFERENCE.md" || { echo "REFERENCE.md lacks parameter $p" >&2; missing=1; }
done
[ "$missing" -eq 0 ] && echo "every parameter documented"
