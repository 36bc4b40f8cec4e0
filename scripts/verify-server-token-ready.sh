#!/usr/bin/env bash
# Verify that a k3s server's join token is ready for agents (seven steps over one SSH connection).
# usage: verify-server-token-ready.sh <server_ip> <ssh_user> [ssh_key_path] [options]; --help for options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -f "$root/bin/scripts/verify-cli.js" && "$root/bin/scripts/verify-cli.js" -nt "$root/scripts/verify-cli.ts" ]]; then
  exec node "$root/bin/scripts/verify-cli.js" "$@"
fi
exec "$root/node_modules/.bin/tsx" "$root/scripts/verify-cli.ts" "$@"
