import * as fs from "node:fs";
import * as path from "node:path";
import { build } from "esbuild";

const HERE = __dirname;
const SRC = path.join(HERE, "src");
const OUT = path.join(HERE, "dist", "k3s");

function newestSource(dir: string): number {
  let newest = fs.statSync(path.join(HERE, "build.ts")).mtimeMs;
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    const s = fs.statSync(p);
    newest = Math.max(newest, s.isDirectory() ? newestSource(p) : s.mtimeMs);
  }
  return newest;
}

// One self-contained executable: installing it on a node is copying this file to /usr/local/bin/k3s.
export async function buildSimulator(): Promise<string> {
  const fresh = fs.existsSync(OUT) && fs.statSync(OUT).mtimeMs >= newestSource(SRC);
  if (!fresh) {
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    const tmp = `${OUT}.${process.pid}.tmp`;
    await build({
      entryPoints: [path.join(SRC, "main.ts")], bundle: true, platform: "node", target: "node18", format: "cjs",
      outfile: tmp, banner: { js: "#!/usr/bin/env node" }, logLevel: "warning",
    });
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, OUT);
  }
  return OUT;
}

if (require.main === module) {
  buildSimulator().then((p) => console.log(p), (e: Error) => { console.error(e.message); process.exit(1); });
}
