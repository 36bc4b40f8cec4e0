// Loads a dynamic provider from its serialized text (the `__provider` input) and runs check then
// create, as the Pulumi engine's dynamic-provider host does (requireFromString(text).handler()).
// Input: one JSON object on stdin {inputs}; output: one JSON line on stdout {id, outs} or {error}.
// Runs as its own process with the project as cwd, so `require("ssh2")` in the text resolves as it would.
"use strict";
const requireFromString = require("require-from-string");

function readStdin() {
  return new Promise((resolve) => {
    let text = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => (text += chunk));
    process.stdin.on("end", () => resolve(text));
  });
}

async function main() {
  const { inputs } = JSON.parse(await readStdin());
  const providerText = inputs.__provider;
  const provider = requireFromString(providerText).handler();
  let props = inputs;
  if (provider.check) {
    const checked = await provider.check({}, inputs);
    if (checked.failures && checked.failures.length > 0) {
      throw new Error(checked.failures.map((f) => `${f.property}: ${f.reason}`).join("; "));
    }
    if (checked.inputs) props = { ...checked.inputs, __provider: providerText };
  }
  const result = await provider.create(props);
  process.stdout.write(JSON.stringify({ id: result.id, outs: { ...result.outs, __provider: providerText } }) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stdout.write(JSON.stringify({ error: String((err && err.message) || err) }) + "\n");
    process.exit(1);
  },
);
