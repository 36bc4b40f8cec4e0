// The Pulumi toolchain this project runs on, built from Go modules with nothing but the Go module proxy:
// the `pulumi` CLI, its Node.js language host and the dynamic-provider host script beside them. Versions
// are pinned here and nowhere else. The build lands in a cache folder outside the checkout, keyed by those
// versions, so a clean clone on the same machine reuses it.
//
//   tsx scripts/pulumi-toolchain.ts          build if missing (npm run setup:pulumi), print where it is
//   tsx scripts/pulumi-toolchain.ts --print  print the bin folder; exit 1 if it is not built
//
// Why these versions:
// - CLI: pkg/v3 v3.274.1, no older than the @pulumi/pulumi in package-lock (the SDK must not be newer
//   than the engine).
// - Language host: `pulumi-language-nodejs` is its own module since mid-2023, and the proxy here serves
//   none of its versions; the newest module that still carries it as a package is sdk/v3 v3.67.0. The
//   engine falls back for every RPC that host predates (Handshake, GetRequiredPackages), and the program
//   itself runs on the npm SDK from package-lock, so only the launcher is old.
// - No provider plugin is built: the program's node-side steps are dynamic resources (components/remote)
//   and run in the engine's own Node.js provider host; AWS and TLS are loaded only on EC2.
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync, chmodSync, rmSync, mkdtempSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

export const PINS = {
  cli: { module: "github.com/pulumi/pulumi/pkg/v3", sdk: "github.com/pulumi/pulumi/sdk/v3", version: "v3.274.1",
    pkg: "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
    // pkg/v3's go.mod replaces these; a wrapper module must repeat the ones that are not local paths.
    replaces: ["github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e"] },
  languageHost: { module: "github.com/pulumi/pulumi/sdk/v3", version: "v3.67.0",
    pkg: "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs" },
} as const;

const projectDir = join(__dirname, "..");
const cacheRoot = process.env.K3S_CLUSTER_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "k3s-cluster");

/** The folder holding `pulumi`, `pulumi-language-nodejs` and `pulumi-resource-pulumi-nodejs`. */
export function toolchainBin(): string {
  return join(cacheRoot, "pulumi", `${PINS.cli.version}-nodejs-${PINS.languageHost.version}`, "bin");
}

export function isBuilt(): boolean {
  return existsSync(join(toolchainBin(), ".complete"));
}

/** Environment for running the CLI offline: file backend and passphrase come from the caller. */
export function offlineEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${toolchainBin()}:${process.env.PATH}`,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
    ...extra,
  };
}

function say(line: string): void {
  process.stderr.write(`setup:pulumi: ${line}\n`);
}

function run(cmd: string, args: string[], opts: SpawnSyncOptions): void {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], ...opts });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status ?? r.signal}) in ${opts.cwd ?? "."}`);
  }
}

function npmSdkVersion(): string {
  const lock = JSON.parse(readFileSync(join(projectDir, "package-lock.json"), "utf8"));
  return lock.packages["node_modules/@pulumi/pulumi"].version;
}

function semverTuple(v: string): number[] {
  return v.replace(/^v/, "").split(/[.+-]/).slice(0, 3).map(Number);
}

function newer(a: string, b: string): boolean {
  const [x, y] = [semverTuple(a), semverTuple(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i];
  return false;
}

/** Builds `pkg` at `requires` in a throw-away wrapper module (the modules' own replace lines point at their repo). */
function goBuild(label: string, out: string, o: { requires: string[]; replaces?: readonly string[]; pkg: string; ldflags?: string }): void {
  const { requires, replaces = [], pkg, ldflags } = o;
  const work = mkdtempSync(join(tmpdir(), "k3s-cluster-gobuild-"));
  const env = {
    ...process.env,
    GOFLAGS: "-mod=mod",
    GOMODCACHE: join(cacheRoot, "go", "mod"),
    GOCACHE: join(cacheRoot, "go", "build"),
    CGO_ENABLED: "0",
    GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? "local",
  };
  try {
    const started = Date.now();
    say(`${label}: resolving ${requires.join(", ")} through the Go module proxy`);
    run("go", ["mod", "init", "k3s-cluster.local/toolchain"], { cwd: work, env, stdio: ["ignore", "ignore", "inherit"] });
    for (const r of replaces) run("go", ["mod", "edit", `-replace=${r}`], { cwd: work, env });
    run("go", ["get", ...requires], { cwd: work, env });
    say(`${label}: compiling ${pkg} (cold: several minutes on 2 cores; cached: seconds)`);
    run("go", ["build", "-trimpath", "-tags", "osusergo,grpcnotrace", ...(ldflags ? ["-ldflags", ldflags] : []), "-o", out, pkg], { cwd: work, env });
    say(`${label}: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Builds whatever is missing; returns the bin folder. */
export function ensureToolchain(): string {
  const bin = toolchainBin();
  const sdk = npmSdkVersion();
  if (newer(sdk, PINS.cli.version)) {
    throw new Error(`@pulumi/pulumi ${sdk} in package-lock is newer than the pinned CLI ${PINS.cli.version}: pin a CLI at least as new in scripts/pulumi-toolchain.mjs`);
  }
  if (isBuilt()) return bin;
  const go = spawnSync("go", ["version"], { encoding: "utf8" });
  if (go.status !== 0) throw new Error("the Go toolchain (`go`) is needed to build the Pulumi CLI: install Go 1.26 or newer");
  const started = Date.now();
  say(`building the Pulumi toolchain into ${bin} (${go.stdout.trim()})`);
  mkdirSync(bin, { recursive: true });
  const { cli, languageHost } = PINS;
  if (!existsSync(join(bin, "pulumi"))) {
    goBuild(`pulumi CLI ${cli.version}`, join(bin, "pulumi"), {
      requires: [`${cli.module}@${cli.version}`, `${cli.sdk}@${cli.version}`],
      replaces: cli.replaces,
      pkg: cli.pkg,
      ldflags: `-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${cli.version}`,
    });
  }
  if (!existsSync(join(bin, "pulumi-language-nodejs"))) {
    goBuild(`Node.js language host (sdk/v3 ${languageHost.version})`, join(bin, "pulumi-language-nodejs"), {
      requires: [`${languageHost.module}@${languageHost.version}`],
      pkg: languageHost.pkg,
    });
  }
  // The dynamic-provider host is a small sh script shipped in the SDK module: it runs the npm SDK's
  // `cmd/dynamic-provider` with node.
  const sdkDir = join(cacheRoot, "go", "mod", "github.com", "pulumi", "pulumi", "sdk", `v3@${cli.version}`);
  copyFileSync(join(sdkDir, "nodejs", "dist", "pulumi-resource-pulumi-nodejs"), join(bin, "pulumi-resource-pulumi-nodejs"));
  for (const f of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]) chmodSync(join(bin, f), 0o755);
  const version = spawnSync(join(bin, "pulumi"), ["version"], { encoding: "utf8" }).stdout.trim();
  if (version !== cli.version) throw new Error(`the built CLI says ${JSON.stringify(version)}, expected ${cli.version}`);
  writeFileSync(join(bin, ".complete"), JSON.stringify({ ...PINS, builtSeconds: (Date.now() - started) / 1000 }, null, 2));
  say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${bin}`);
  return bin;
}

if (require.main === module) {
  try {
    if (process.argv.includes("--print")) {
      if (!isBuilt()) {
        say(`not built yet: run npm run setup:pulumi`);
        process.exit(1);
      }
      console.log(toolchainBin());
    } else {
      const started = Date.now();
      const cached = isBuilt();
      const bin = ensureToolchain();
      say(`${cached ? "cached" : "built"}: ${bin} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      console.log(bin);
    }
  } catch (err) {
    say((err as Error).message);
    process.exit(1);
  }
}
