// A real kubectl from Debian's kubernetes-client package, unpacked into a cache folder rather than
// installed: machines of this kind may already carry another package owning /usr/bin/kubectl.
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";

const CACHE = "/var/cache/k3s-cluster-tests/kubernetes-client";

export function kubectlPath(): string {
  const binary = path.join(CACHE, "usr/bin/kubectl");
  if (fs.existsSync(binary)) return binary;
  const work = fs.mkdtempSync("/tmp/k3s-kubectl-");
  process.stderr.write("kubectl: fetching Debian's kubernetes-client package (about 8 MB)\n");
  execFileSync("apt-get", ["download", "kubernetes-client"], { cwd: work, stdio: ["ignore", "ignore", "inherit"] });
  const deb = fs.readdirSync(work).find((f) => f.endsWith(".deb"));
  if (!deb) throw new Error("apt-get download kubernetes-client produced no .deb");
  fs.mkdirSync(CACHE, { recursive: true });
  execFileSync("dpkg-deb", ["-x", path.join(work, deb), CACHE]);
  fs.rmSync(work, { recursive: true, force: true });
  return binary;
}
