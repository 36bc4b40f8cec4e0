import { runServer } from "./server";
import { runAgent } from "./agent";
import { runKubectl } from "./kubectl";
import { runToken } from "./token-cli";
import { runSimEtcd } from "./etcd-cli";
import { DEFAULT_KNOBS, loadKnobs, releaseCommit, STAMPED_RELEASE } from "./knobs";

// Go release k3s builds each minor with.
function goVersion(version: string): string {
  const minor = Number(/^v1\.(\d+)\./.exec(version)?.[1] ?? 34);
  return minor >= 35 ? "go1.25.5" : minor === 34 ? "go1.24.11" : "go1.24.9";
}

// CLI dispatch like the k3s binary.
async function main(argv: string[]): Promise<void> {
  const cmd = argv[0];
  if (cmd === "--version" || cmd === "-v" || cmd === "version") {
    let version = STAMPED_RELEASE ?? DEFAULT_KNOBS.version;
    try { version = loadKnobs().version; } catch { /* a broken knob file must not break --version */ }
    process.stdout.write(`k3s version ${version} (${releaseCommit(version)})\ngo version ${goVersion(version)}\n`);
    return;
  }
  switch (cmd) {
    case "server": return runServer(argv.slice(1));
    case "agent": return runAgent(argv.slice(1));
    case "kubectl": process.exit(await runKubectl(argv.slice(1)));
    // eslint-disable-next-line no-fallthrough
    case "token": process.exit(await runToken(argv.slice(1)));
    // eslint-disable-next-line no-fallthrough
    case "sim-etcd": process.exit(await runSimEtcd(argv.slice(1)));
  }
  process.stderr.write(`Usage: k3s [--version] server|agent|kubectl|token rotate|sim-etcd [flags]\n(simulator of k3s; unknown command "${cmd ?? ""}")\n`);
  process.exit(1);
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`time="${new Date().toISOString()}" level=fatal msg="${e.message}"\n`);
  process.exit(1);
});
