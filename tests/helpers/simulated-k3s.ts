// The k3s simulator installed on a test node the way k3s's install script installs k3s: the binary at
// /usr/local/bin/k3s and the `k3s` unit (Type=notify, Restart=always), with timings and faults from
// /etc/k3s-sim.json. For suites that need a k3s server without going through the Puppet module.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { buildSimulator } from "../k3s-sim/build";
import type { TestNode } from "../rig/nodes";

// The unit k3s's install script writes, running the simulator instead of k3s.
export const K3S_SERVER_UNIT = `[Unit]
Description=Lightweight Kubernetes
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
EnvironmentFile=-/etc/systemd/system/k3s.service.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=/usr/local/bin/k3s server

[Install]
WantedBy=multi-user.target
`;

export interface SimKnobs {
  tokenDelay?: number;
  apiReadyDelay?: number;
  nodeReadyDelay?: number;
  faults?: Record<string, unknown>;
}

async function write(node: TestNode, file: string, content: string, mode = 0o644): Promise<void> {
  const full = path.join(node.rootDir, file);
  await fs.mkdir(path.dirname(full), { recursive: true });
  await fs.writeFile(full, content, { mode });
}

/** Puts the simulator, its unit and config.yaml on the node; does not start it. */
export async function installSimulatedK3s(node: TestNode, config = `node-name: ${node.name}\n`): Promise<void> {
  const bin = path.join(node.rootDir, "usr/local/bin/k3s");
  await fs.mkdir(path.dirname(bin), { recursive: true });
  await fs.copyFile(await buildSimulator(), bin);
  await fs.chmod(bin, 0o755);
  await write(node, "etc/rancher/k3s/config.yaml", config, 0o600);
  await write(node, "etc/systemd/system/k3s.service", K3S_SERVER_UNIT);
}

/**
 * (Re)starts k3s from scratch with the given knobs: stopped, its data and kubeconfig removed, start queued.
 * `restart: "no"` adds a drop-in so a crashing k3s ends `failed` instead of restarting.
 */
export async function startSimulatedK3s(node: TestNode, knobs: SimKnobs, opts: { restart?: "always" | "no" } = {}): Promise<void> {
  await write(node, "etc/k3s-sim.json", JSON.stringify(knobs));
  await write(node, "etc/systemd/system/k3s.service.d/restart.conf", `[Service]\nRestart=${opts.restart ?? "always"}\n`);
  const r = await node.exec(`systemctl stop k3s 2>/dev/null; systemctl reset-failed k3s 2>/dev/null
    rm -rf /var/lib/rancher/k3s /etc/rancher/k3s/k3s.yaml
    systemctl daemon-reload && systemctl start --no-block k3s`);
  if (r.code !== 0) throw new Error(`could not start the simulated k3s on ${node.name}: ${r.stderr}`);
}
