// Suites run in separate processes that may share the bridge, the root filesystem and the SSH key:
// each of those is created under an exclusive flock so the first comer builds it and the others wait.
import { run } from "./sh";

export const CACHE_DIR = process.env.K3S_TEST_CACHE ?? "/var/cache/k3s-cluster-tests";

/** Runs `script` (bash) while holding the lock file `name` in the cache dir. */
export async function underLock(name: string, script: string, timeoutMs: number): Promise<string> {
  await run("mkdir", ["-p", CACHE_DIR]);
  const res = await run("flock", ["--wait", String(Math.ceil(timeoutMs / 1000)), `${CACHE_DIR}/${name}.lock`, "bash", "-euo", "pipefail", "-c", script], {
    timeoutMs: timeoutMs + 5_000,
  });
  return res.stdout;
}
