import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { tmpdir } from "node:os";

const SCRIPT = resolve(__dirname, "../../scripts/verify-server-token-ready.sh");
const run = (...args: string[]) => spawnSync("bash", [SCRIPT, ...args], { cwd: tmpdir(), encoding: "utf8" });

test("usage errors exit 2 and name the setting, value and rule, from any directory", () => {
  let r = run();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: verify-server-token-ready\.sh <server_ip> <ssh_user>/);
  r = run("198.51.100.10", "root", "/etc/hostname", "--timeout", "5");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--timeout "5": must be between 30 and 600/);
  r = run("198.51.100.10", "root", "/etc/hostname", "--ssh-port", "70000");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--ssh-port "70000"/);
  r = run("198.51.100.10", "root", "/nonexistent/key");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /ssh_key_path "\/nonexistent\/key": cannot be read/);
  r = run("198.51.100.10", "root", "--bogus");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option --bogus/);
});
