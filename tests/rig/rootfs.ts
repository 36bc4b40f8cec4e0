// The root filesystem all nodes share read-only: built once by build-rootfs.sh and cached. Its directory
// name carries a hash of the build script, so changing what goes into a node rebuilds it.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { CACHE_DIR, underLock } from "./lock";

const BUILD_SCRIPT = path.join(__dirname, "build-rootfs.sh");

export function rootfsPath(): string {
  const hash = createHash("sha256").update(readFileSync(BUILD_SCRIPT)).digest("hex").slice(0, 12);
  return path.join(CACHE_DIR, `rootfs-bookworm-${hash}`);
}

export async function ensureRootfs(): Promise<string> {
  const dest = rootfsPath();
  await underLock("rootfs", `test -d '${dest}' || bash '${BUILD_SCRIPT}' '${dest}'`, 15 * 60_000);
  return dest;
}
