// Loads a serialized dynamic provider the way the engine's dynamic-provider host does
// (@pulumi/pulumi/cmd/dynamic-provider: `requireFromString(text).handler()`), in a fresh Node process with
// no TypeScript loader, then calls its methods in order and prints one JSON line of results.
// usage: node dynamic-provider-host.cjs <provider.js> <calls.json>   (calls: [[method, ...args], ...])
"use strict";
const fs = require("fs");
const requireFromString = require(require.resolve("require-from-string", { paths: [require.resolve("@pulumi/pulumi")] }));

async function main() {
  const text = fs.readFileSync(process.argv[2], "utf8");
  const calls = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
  const provider = requireFromString(text).handler();
  const results = [];
  for (const [method, ...args] of calls) {
    const started = Date.now();
    try {
      results.push({ method, ms: Date.now() - started, result: await provider[method](...args) });
    } catch (err) {
      results.push({ method, ms: Date.now() - started, error: String(err && err.message ? err.message : err) });
    }
    results[results.length - 1].ms = Date.now() - started;
  }
  process.stdout.write(JSON.stringify(results) + "\n");
}
main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
