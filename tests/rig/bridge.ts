// The test network: one Linux bridge on the host. Nodes attach to it with a veth pair each; they get no
// default route, so nothing they send can leave 198.51.100.0/24.
import { underLock } from "./lock";

export const BRIDGE = "k3stest0";
export const HOST_IP = "198.51.100.1";
export const PREFIX_LENGTH = 24;

export async function ensureBridge(): Promise<void> {
  await underLock(
    "bridge",
    `ip link show ${BRIDGE} >/dev/null 2>&1 || ip link add ${BRIDGE} type bridge
     ip -4 addr show dev ${BRIDGE} | grep -q ' ${HOST_IP}/' || ip addr add ${HOST_IP}/${PREFIX_LENGTH} dev ${BRIDGE}
     ip link set ${BRIDGE} up`,
    30_000,
  );
}
