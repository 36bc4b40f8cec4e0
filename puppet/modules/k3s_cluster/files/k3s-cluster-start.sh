#!/bin/bash
# Starts (or restarts after a configuration change) a k3s unit and waits, bounded, until it is active.
# k3s units are Type=notify: `systemctl start` would block until k3s is ready, and forever for an agent
# whose token is refused, so the start is queued and the wait has a deadline.
#
# usage: k3s-cluster-start UNIT TIMEOUT_SECONDS     start or restart, then wait (0: do not wait)
#        k3s-cluster-start --check UNIT             exit 0 when active with the current configuration
# exit:  0 active; 1 not active within the timeout (the unit's last log lines are printed); 2 usage
set -euo pipefail
# config.yaml.d is often empty: an unmatched glob would reach cat literally and fail the pipeline.
shopt -s nullglob

stamp_dir=/var/lib/k3s-cluster
fingerprint() {
  # What k3s reads at start: if any of it changed since the unit last turned active, restart it.
  cat /etc/rancher/k3s/config.yaml /etc/rancher/k3s/config.yaml.d/*.yaml "/etc/systemd/system/$1.service" \
    /usr/local/bin/k3s 2>/dev/null | sha256sum | cut -d' ' -f1
}

if [ "${1:-}" = --check ]; then
  unit=${2:?usage: k3s-cluster-start --check UNIT}
  systemctl is-active --quiet "$unit" && [ "$(cat "$stamp_dir/$unit.applied" 2>/dev/null)" = "$(fingerprint "$unit")" ]
  exit
fi

unit=${1:-}
timeout=${2:-}
if [ -z "$unit" ] || ! [[ "$timeout" =~ ^[0-9]+$ ]]; then
  echo "usage: k3s-cluster-start UNIT TIMEOUT_SECONDS | --check UNIT" >&2
  exit 2
fi

systemctl enable --quiet "$unit"
if systemctl is-active --quiet "$unit"; then
  echo "k3s_cluster: configuration of $unit changed; restarting it"
  systemctl restart --no-block "$unit"
  sleep 1
else
  systemctl start --no-block "$unit"
fi
# The configuration the unit was (re)started with: --check compares against it, so a unit that is slow
# to turn active is not restarted again by the next run, whether or not this run waits for it.
mkdir -p "$stamp_dir"
fingerprint "$unit" > "$stamp_dir/$unit.applied"

if [ "$timeout" -eq 0 ]; then
  echo "k3s_cluster: start of $unit queued; not waiting for it here"
  exit 0
fi
echo "k3s_cluster: waiting up to ${timeout} s for $unit to turn active"
deadline=$((SECONDS + timeout))
next_note=$((SECONDS + 10))
while ! systemctl is-active --quiet "$unit"; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    state=$(systemctl is-active "$unit" || true)
    echo "k3s_cluster: $unit is still '$state' after ${timeout} s (token_timeout); its last log lines:" >&2
    journalctl -u "$unit" --no-pager -n 15 -o cat >&2 || true
    exit 1
  fi
  if [ "$SECONDS" -ge "$next_note" ]; then
    echo "k3s_cluster: $unit is $(systemctl is-active "$unit" || true); waiting $((deadline - SECONDS)) s more"
    next_note=$((SECONDS + 10))
  fi
  sleep 1
done
echo "k3s_cluster: $unit is active"
