// A stand-in `k3s_cluster` Puppet module with the real class parameter list (the interface the bootstrap's
// manifest targets), whose body only records what it was given — for testing the bootstrap steps without
// installing k3s.
import * as fs from "node:fs";
import * as path from "node:path";

/** Writes `<modulesDir>/k3s_cluster/manifests/init.pp` with `body` as the class body (Puppet code). */
export function writeStandinK3sModule(modulesDir: string, body: string): void {
  fs.mkdirSync(path.join(modulesDir, "k3s_cluster/manifests"), { recursive: true });
  fs.writeFileSync(path.join(modulesDir, "k3s_cluster/manifests/init.pp"), `class k3s_cluster(
  String $node_type, Boolean $cluster_init, String $cluster_name, Boolean $auto_token_sharing,
  Optional[String] $token_file = undefined, Optional[String] $server_url = undefined, String $k3s_version,
  String $install_method, Optional[String] $binary_source = undefined, Optional[String] $binary_sha256 = undefined,
  String $node_name, Array[String] $tls_san, Integer $token_timeout = 300, Boolean $wait_for_service = true,
) {
${body}
}
`, { mode: 0o644 });
}
