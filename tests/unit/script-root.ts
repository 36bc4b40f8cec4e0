// Running generated node-side scripts for real in unit tests: shellcheck, a scratch directory, and a throwaway
// root entered with chroot for scripts whose paths are fixed (k3s's own files, /usr/local/bin first on PATH),
// so this machine's /usr/local, /etc and /var are never touched. Shared by bootstrap-scripts.test.ts and
// day-two-scripts.test.ts (not a test file itself).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { remoteCommand } from "../../components/bootstrap-scripts";

export function tmpRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "k3s-bootstrap-"));
}

/** shellcheck finds nothing in `script` (run by bash) nor in the command text that carries it over SSH. */
export function assertShellcheckClean(name: string, script: string): void {
  const dir = tmpRoot();
  const file = path.join(dir, `${name}.sh`);
  fs.writeFileSync(file, `#!/usr/bin/env bash\n${script}`);
  const r = spawnSync("shellcheck", ["-s", "bash", "-S", "style", file], { encoding: "utf8" });
  assert.equal(r.error, undefined, "shellcheck must be installed (tests/setup/debian-packages.txt)");
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const wrapped = path.join(dir, `${name}.cmd.sh`);
  fs.writeFileSync(wrapped, `#!/bin/sh\n${remoteCommand(script, { timeoutSeconds: 60, asRoot: true, sshUser: "ubuntu" })}\n`);
  // SC2016 ("expressions don't expand in single quotes") is the point of the wrapper: the login shell
  // must pass the script to bash untouched.
  const w = spawnSync("shellcheck", ["-s", "sh", "-S", "style", "-e", "SC2016", wrapped], { encoding: "utf8" });
  assert.equal(w.status, 0, w.stdout + w.stderr);
}

export type RootFile = string | { link: string } | { script: string; shell?: string };

/**
 * A throwaway root: the host's /usr read-only (so bash and coreutils are the real ones), its own /usr/local,
 * /etc (with the host's users, groups and alternatives, so `chown root:root` and `awk` work), /var and /tmp,
 * the host's /dev and /proc (for `<(…)`), and /stub first on PATH for the commands a test stands in for.
 * Entered with chroot in a private mount namespace; `files` are created before, and the tree is left for the
 * test to inspect.
 */
export function fakeRoot(files: Record<string, RootFile> = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-fakeroot-"));
  for (const d of ["usr", "usr-local/bin", "usr-local/sbin", "dev", "proc", "etc", "var/lib", "tmp", "stub"]) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  for (const l of ["bin", "lib", "lib64", "sbin"]) fs.symlinkSync(`usr/${l}`, path.join(root, l));
  for (const f of ["ld.so.cache", "passwd", "group"]) fs.copyFileSync(`/etc/${f}`, path.join(root, "etc", f));
  fs.cpSync("/etc/alternatives", path.join(root, "etc/alternatives"), { recursive: true, verbatimSymlinks: true });
  for (const [rel, what] of Object.entries(files)) writeRootFile(root, rel, what);
  return root;
}

/** Creates (or replaces) `rel` inside a fake root; /usr/local lives in usr-local, bound over /usr/local inside. */
export function writeRootFile(root: string, rel: string, what: RootFile): void {
  const full = rootPath(root, rel);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  fs.rmSync(full, { force: true });
  if (typeof what === "string") fs.writeFileSync(full, what);
  else if ("link" in what) fs.symlinkSync(what.link, full);
  else fs.writeFileSync(full, `#!${what.shell ?? "/bin/sh"}\n${what.script}\n`, { mode: 0o755 });
}

/** Where `rel` (a path inside the fake root) is on this machine. */
export function rootPath(root: string, rel: string): string {
  return path.join(root, rel.replace(/^\/usr\/local\//, "/usr-local/"));
}

export function runInFakeRoot(root: string, text: string, env: { PATH?: string } = {}) {
  const enter = `set -e
mount --rbind /usr "$0/usr"
mount -o remount,bind,ro "$0/usr"
mount --bind "$0/usr-local" "$0/usr/local"
mount --rbind /dev "$0/dev"
mount --rbind /proc "$0/proc"
PATH="$INNER_PATH" exec /usr/sbin/chroot "$0" /bin/sh -c "$1"`;
  const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", enter, root, text], {
    encoding: "utf8", timeout: 60_000,
    env: {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8",
      INNER_PATH: env.PATH ?? "/stub:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    },
  });
  assert.equal(r.error, undefined, "unshare and chroot (util-linux, coreutils) run the fixed-path scripts in a throwaway root");
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export const rootCommand = (script: string, timeoutSeconds = 30) =>
  remoteCommand(script, { timeoutSeconds, asRoot: true, sshUser: "root" });

/** Each stub appends its name and arguments to /stub-calls, so a test sees what the script asked of it. */
export const recordingStub = (name: string, rest = "exit 0") => ({ script: `echo "${name}\${*:+ $*}" >> /stub-calls\n${rest}` });

export const stubCalls = (root: string) =>
  (fs.existsSync(path.join(root, "stub-calls")) ? fs.readFileSync(path.join(root, "stub-calls"), "utf8") : "");
