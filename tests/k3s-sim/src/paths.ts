import * as path from "node:path";

// Every absolute path goes through here so a test can run the simulator as a plain host process
// (K3S_SIM_ROOT=/tmp/x) without touching the host's /etc or /var/lib.
export function hostPath(p: string): string {
  const root = process.env.K3S_SIM_ROOT;
  return root ? path.join(root, p) : p;
}
