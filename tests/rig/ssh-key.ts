// One SSH key pair every node accepts for root and ubuntu; created once in the cache dir (0600).
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { CACHE_DIR } from "./lock";

export interface TestSshKey { privateKeyPath: string; privateKey: string; publicKey: string; }

let cached: TestSshKey | undefined;

export function testSshKey(): TestSshKey {
  if (cached) return cached;
  mkdirSync(CACHE_DIR, { recursive: true });
  const keyPath = path.join(CACHE_DIR, "test_ed25519");
  execFileSync("flock", [`${keyPath}.lock`, "sh", "-c",
    `test -s '${keyPath}' || ssh-keygen -q -t ed25519 -N '' -C k3s-cluster-tests -f '${keyPath}'`]);
  cached = {
    privateKeyPath: keyPath,
    privateKey: readFileSync(keyPath, "utf8"),
    publicKey: readFileSync(`${keyPath}.pub`, "utf8").trim(),
  };
  return cached;
}
