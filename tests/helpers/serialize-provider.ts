// Serializes the ServerToken dynamic provider as pulumi.dynamic.Resource does — from the running (tsx)
// module or from `tsc` output — and runs the text in a fresh Node process as the engine's host does.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { serverTokenProvider } from "../../components/server-token";

export const ROOT = path.resolve(__dirname, "../..");
const HOST = path.join(ROOT, "tests/helpers/dynamic-provider-host.cjs");

export interface Serialized { text: string; containsSecrets: boolean }

export async function serializeUnderTsx(): Promise<Serialized> {
  const provider = serverTokenProvider;
  const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  return { text: sf.text, containsSecrets: sf.containsSecrets };
}

/** Compiles components/server-token.ts with the project's tsconfig and serializes the compiled provider. */
export function serializeFromTsc(): Serialized {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-tsc-"));
  const out = path.join(dir, "out");
  fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({
    extends: path.join(ROOT, "tsconfig.json"),
    compilerOptions: { outDir: out, rootDir: ROOT, sourceMap: false, noEmit: false, typeRoots: [path.join(ROOT, "node_modules/@types")] },
    files: [path.join(ROOT, "components/server-token.ts")],
    include: [],
  }));
  const tsc = spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(dir, "tsconfig.json")],
    { encoding: "utf8", timeout: 120_000 });
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(out, "node_modules"));
  const file = path.join(dir, "provider.js");
  // A script file, not `node -e`: under -e Node exposes built-in modules (http, tls, …) as globals, and the
  // serializer would then leave them out of the closure as if every process had them.
  const script = path.join(out, "serialize.js");
  fs.writeFileSync(script, `
    const p = require(${JSON.stringify(path.join(out, "components/server-token.js"))}).serverTokenProvider;
    require("@pulumi/pulumi").runtime.serializeFunction(() => p, { allowSecrets: true }).then((sf) => {
      require("fs").writeFileSync(${JSON.stringify(file)}, sf.text);
      console.log(JSON.stringify({ containsSecrets: sf.containsSecrets }));
    });`);
  const r = spawnSync(process.execPath, [script],
    { cwd: out, encoding: "utf8", timeout: 60_000, env: { ...process.env, NODE_OPTIONS: "" } });
  assert.equal(r.status, 0, r.stderr);
  return { text: fs.readFileSync(file, "utf8"), containsSecrets: JSON.parse(r.stdout).containsSecrets };
}

export interface HostResult { method: string; ms: number; result?: any; error?: string }

/** Runs `calls` ([method, ...args]) against the serialized provider in a fresh process, cwd = project. */
export function runInProviderHost(text: string, calls: unknown[][], timeoutMs = 120_000): HostResult[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-provider-"));
  fs.writeFileSync(path.join(dir, "provider.js"), text);
  fs.writeFileSync(path.join(dir, "calls.json"), JSON.stringify(calls), { mode: 0o600 });
  const r = spawnSync(process.execPath, [HOST, path.join(dir, "provider.js"), path.join(dir, "calls.json")],
    { cwd: ROOT, encoding: "utf8", timeout: timeoutMs, env: { ...process.env, NODE_OPTIONS: "" } });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}
