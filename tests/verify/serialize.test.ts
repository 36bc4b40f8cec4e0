// The verifier runs inside a Pulumi dynamic provider: the engine closure-serializes it and loads the text
// with require-from-string in a fresh process. Prove that text runs the real SSH path.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";
import { verifyServerToken } from "../../components/verify";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vfy-ser-"));
const PORT = 22000 + (process.pid % 1000);
let sshd: ChildProcess | undefined;
after(() => { if (sshd?.pid) process.kill(sshd.pid); fs.rmSync(dir, { recursive: true, force: true }); });

function startSshd(): void {
  for (const k of ["hostkey", "userkey"]) {
    const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, k)]);
    assert.equal(r.status, 0, String(r.stderr));
  }
  fs.copyFileSync(path.join(dir, "userkey.pub"), path.join(dir, "authorized_keys"));
  fs.writeFileSync(path.join(dir, "sshd_config"), [
    `Port ${PORT}`, "ListenAddress 127.0.0.1", `HostKey ${dir}/hostkey`, `PidFile ${dir}/sshd.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys`, "PermitRootLogin prohibit-password", "StrictModes no", "",
  ].join("\n"));
  fs.mkdirSync("/run/sshd", { recursive: true });
  sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: "ignore" });
}

async function waitPort(): Promise<void> {
  const net = await import("node:net");
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(PORT, "127.0.0.1", () => { s.end(); r(true); });
      s.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${PORT} within 5 s`);
}

test("serialized verifier loads in a fresh process and runs step 1 over real SSH", async () => {
  startSshd();
  await waitPort();
  const handler = () => (opts: Parameters<typeof verifyServerToken>[0]) => verifyServerToken(opts);
  const text = await pulumi.runtime.serializeFunction(handler);
  const providerFile = path.join(dir, "provider.js");
  fs.writeFileSync(providerFile, text.text);
  const driver = path.join(dir, "driver.cjs");
  const wrong = "SHA256:" + "A".repeat(43);
  fs.writeFileSync(driver, `
    const fs = require("fs");
    const rfs = require(${JSON.stringify(require.resolve("require-from-string", { paths: [require.resolve("@pulumi/pulumi")] }))});
    const verify = rfs(fs.readFileSync(${JSON.stringify(providerFile)}, "utf8"), ${JSON.stringify(path.join(process.cwd(), "provider.js"))}).${text.exportName}();
    verify({ host: "127.0.0.1", sshPort: ${PORT}, username: "root", privateKey: fs.readFileSync(${JSON.stringify(path.join(dir, "userkey"))}, "utf8"),
      expectedHostKey: ${JSON.stringify(wrong)}, timeoutSeconds: 30, intervalSeconds: 1 })
      .then((r) => process.stdout.write(JSON.stringify(r) + "\\n"), (e) => { console.error(e); process.exit(3); });
  `);
  const r = spawnSync(process.execPath, [driver], { cwd: process.cwd(), encoding: "utf8", timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout.trim().split("\n").pop() as string);
  assert.equal(report.ok, false);
  assert.equal(report.failedStep, 1);
  assert.equal(report.steps[0].attempts, 1, "a host-key mismatch is final");
  assert.match(report.steps[0].detail, /host key SHA256:\S+ of 127\.0\.0\.1 differs from the expected/);
  assert.equal(report.sshConnections, 1);
});
