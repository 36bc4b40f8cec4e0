// The node-side check as a file (what the Puppet module ships) and as the verifier carries it: the same
// text, shellcheck-clean, every option documented in its header, and usage errors refused with exit 2
// before anything is checked. Runs on the host; behaviour on a node is in nodes-watcher.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CHECK_SCRIPT, CHECK_TICK_S } from "../../components/verify";
import { MODULE_FILE, SCRIPT_FILE, renderModule } from "./generate-check-script";

const script = fs.readFileSync(SCRIPT_FILE, "utf8");
const run = (args: string[], input?: string) => spawnSync("bash", [SCRIPT_FILE, ...args], { encoding: "utf8", input, timeout: 10_000 });

test("the verifier carries the Puppet module's script verbatim (regenerate with tests/verify/generate-check-script.ts)", () => {
  assert.equal(CHECK_SCRIPT, script);
  assert.equal(fs.readFileSync(MODULE_FILE, "utf8"), renderModule(script));
  assert.equal(CHECK_TICK_S, 0.1, "the check's tick, as the verifier reads it from the script");
  assert.ok((fs.statSync(SCRIPT_FILE).mode & 0o111) !== 0, "the script is executable");
});

test("shellcheck finds nothing in the script", (t) => {
  if (spawnSync("shellcheck", ["--version"]).error) {
    assert.ok(!process.env.CI, "shellcheck is missing (tests/setup/install-debian-packages.sh installs it)");
    t.skip("shellcheck is not installed");
    return;
  }
  const r = spawnSync("shellcheck", [SCRIPT_FILE], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test("every option the script accepts is in its usage header", () => {
  const parse = script.slice(script.indexOf("parse_args() {"), script.indexOf("read_expected_token() {"));
  const accepted = [...parse.matchAll(/^\s+(--[a-z-]+)(?:\|[-a-z]+)?\)/gm)].map((m) => m[1]).filter((o) => o !== "--help");
  assert.ok(accepted.length >= 8, `found only ${accepted.join(" ")}`);
  const header = script.slice(0, script.indexOf("\nset -"));
  for (const o of accepted) assert.match(header, new RegExp(`^#\\s+${o}\\b`, "m"), `${o} is not documented in the header`);
});

test("usage errors exit 2 naming the option, before any check runs", () => {
  const cases: [string[], RegExp][] = [
    [["--timeout", "abc"], /--timeout "abc": must be a number of seconds/],
    [["--timeout", "3601"], /--timeout "3601": must be at most 3600 seconds/],
    [["--api-port", "70000"], /--api-port "70000": must be a port number/],
    [["--data-dir", "relative"], /--data-dir "relative": must be an absolute path/],
    [["--node-name", "a b"], /--node-name "a b": not a node name/],
    [["--bogus"], /unknown argument "--bogus"/],
    [["--expected-token-stdin", "--expected-token-file", "/x"], /exclude each other/],
  ];
  for (const [args, message] of cases) {
    const r = run(args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^usage: k3s-cluster-check /m);
    assert.equal(r.stdout, "", "nothing checked, nothing printed");
  }
});

test("an expected-token file others can read is refused, and so is an empty one on stdin", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-check-"));
  try {
    const file = path.join(dir, "token");
    fs.writeFileSync(file, "K10" + "a".repeat(64) + "::server:" + "b".repeat(32) + "\n", { mode: 0o644 });
    let r = run(["--expected-token-file", file]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /must be owned by root and not readable by group or others \(is uid\/mode 0 644\)/);
    assert.ok(!r.stderr.includes("b".repeat(32)), "the refusal does not show the token");
    r = run(["--expected-token-stdin"], "\n");
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /the expected token is empty/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
