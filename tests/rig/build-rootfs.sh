#!/usr/bin/env bash
# Builds the shared, read-only root filesystem every test node boots from (as an overlay lower layer).
# Usage: build-rootfs.sh DEST   — DEST must not exist; it is created complete or not at all.
set -euo pipefail

dest=${1:?usage: build-rootfs.sh DEST}
mirror=${K3S_TEST_MIRROR:-http://deb.debian.org/debian}
work="$dest.partial.$$"
trap 'rm -rf "$work"' EXIT

# What a fresh cloud image with puppet-agent preinstalled offers: nodes have no route to the internet, so
# everything the bootstrap would install is baked in here. libstdc++6 is for the host's node binary,
# which the rig bind-mounts read-only (the k3s simulator runs on it).
packages=systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,procps,curl,ca-certificates,openssl,puppet-agent,libstdc++6,less

echo "rig: debootstrap bookworm into $work from $mirror (about a minute on first use)" >&2
debootstrap --variant=minbase --include="$packages" bookworm "$work" "$mirror" >"$work.log" 2>&1 ||
  { tail -30 "$work.log" >&2; rm -f "$work.log"; exit 1; }
rm -f "$work.log"

chroot "$work" /bin/bash -euo pipefail <<'CHROOT'
useradd --create-home --shell /bin/bash ubuntu
echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-ubuntu
chmod 0440 /etc/sudoers.d/90-ubuntu
# Host keys and machine-id are made per node at boot, so no two nodes share an identity.
rm -f /etc/ssh/ssh_host_* /etc/machine-id /var/lib/dbus/machine-id
: > /etc/machine-id
systemctl enable systemd-networkd.service ssh.service >/dev/null 2>&1
# Units that fail or wait in vain inside a container without devices or a network route.
systemctl mask systemd-networkd-wait-online.service getty@tty1.service console-getty.service \
  systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service >/dev/null 2>&1
# A puppet agent must not start a daemon on boot: tests run it on demand.
systemctl disable puppet.service >/dev/null 2>&1 || true
apt-get clean
rm -rf /var/lib/apt/lists/*
CHROOT

mv "$work" "$dest"
trap - EXIT
echo "rig: root filesystem ready at $dest" >&2
