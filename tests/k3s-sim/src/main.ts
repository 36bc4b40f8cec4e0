import { runServer } from "./server";
import { runAgent } from "./agent";
import { runKubectl } from "./kubectl";
import { loadKnobs } from "./knobs";

// CLI dispatch like the k3s binary.
async function main(argv: string[]): Promise<void> {
  const cmd = argv[0];
  if (cmd === "--version" || cmd === "-v" || cmd === "version") {
    let version = "v1.34.3+k3s1";
    try { version = loadKnobs().version; } catch { /* a broken knob file must not break --version */ }
    process.stdout.write(`k3s version ${version} (simulator)\ngo version go1.24.11\n`);
    return;
  }
  switch (cmd) {
    case "server": return runServer(argv.slice(1));
    case "agent": return runAgent(argv.slice(1));
    case "kubectl": process.exit(await runKubectl(argv.slice(1)));
  }
  process.stderr.write(`Usage: k3s [--version] server|agent|kubectl [flags]\n(simulator of k3s; unknown command "${cmd ?? ""}")\n`);
  process.exit(1);
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`time="${new Date().toISOString()}" level=fatal msg="${e.message}"\n`);
  process.exit(1);
});
