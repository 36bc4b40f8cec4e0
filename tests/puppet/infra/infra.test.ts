// The Puppet infrastructure itself: one certname exports a resource, another collects it through the real
// puppetserver + PuppetDB, and PuppetDB's API shows both sides. Then everything started is gone.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { hostAgent, type HostAgent } from "./host-agent";
import { startPuppetInfra, type PuppetInfra } from "./index";
import { alive, cmd } from "./daemon";

const TAG = "pup_infra_selftest";

describe("puppet infrastructure (PostgreSQL + PuppetDB + puppetserver)", () => {
  let infra: PuppetInfra;
  let exporter: HostAgent;
  let collector: HostAgent;
  let markerPath: string;

  before(async () => {
    infra = await startPuppetInfra();
    console.log(`infra start-up ${(infra.startupMs / 1000).toFixed(1)} s; memory MiB ${JSON.stringify(infra.memory())}`);
    markerPath = path.join(infra.stateDir, "agents", "collected-marker");
    await infra.writeSiteManifest(`
node 'pup-host-export' {
  @@file { '${markerPath}':
    ensure  => file,
    mode    => '0644',
    content => "exported by \${trusted['certname']}\\n",
    tag     => ['${TAG}'],
  }
}
node 'pup-host-collect' {
  File <<| tag == '${TAG}' |>>
}
node default {}
`);
    exporter = await hostAgent(infra, "pup-host-export");
    collector = await hostAgent(infra, "pup-host-collect");
  });

  after(async () => {
    await infra?.stop();
  });

  it("puppetserver listens where nodes reach it; PuppetDB on loopback only, for puppetserver and the tests", async () => {
    const listening = (await cmd("ss", ["-Hltn"])).stdout;
    const local = (port: number) => listening.split("\n").map((l) => l.trim().split(/\s+/)[3])
      .filter((a) => a && a.endsWith(`:${port}`)).map((a) => a.replace(/^\[::ffff:(.*)\]/, "$1")).sort();
    assert.deepEqual(local(8140), [`${infra.serverIp}:8140`]);
    assert.deepEqual(local(8081), ["127.0.0.1:8081"]);
    assert.deepEqual(local(18080), ["127.0.0.1:18080"]);
  });

  it("signs a new agent and stores the export of one certname in PuppetDB", async () => {
    const res = await exporter.run();
    assert.equal(res.code, 0, `exporting run failed:\n${res.stdout}\n${res.stderr}`);
    const found = await infra.waitForExport("file", { tag: TAG }, 60_000);
    assert.equal(found.length, 1);
    assert.equal(found[0].certname, "pup-host-export");
    assert.equal(found[0].title, markerPath);
    assert.equal(found[0].exported, true);
    assert.equal(found[0].parameters.content, "exported by pup-host-export\n");
    await assert.rejects(fs.stat(markerPath), "the exporting node must not realize its own export");
    assert.match(await infra.dumpDatabase(), /exported by pup-host-export/, "the database dump shows what PuppetDB stores");
    assert.ok((await infra.certnames()).includes("pup-host-export"));
  });

  it("lets another certname collect it", async () => {
    const res = await collector.run();
    assert.equal(res.code, 2, `collecting run should change something:\n${res.stdout}\n${res.stderr}`);
    assert.equal(await fs.readFile(markerPath, "utf8"), "exported by pup-host-export\n");
    assert.deepEqual((await infra.certnames()).filter((c) => c.startsWith("pup-host-")),
      ["pup-host-collect", "pup-host-export"]);
    // The collector's stored catalog now holds the resource as an ordinary (not exported) one.
    const query = encodeURIComponent(JSON.stringify(["and", ["=", "certname", "pup-host-collect"],
      ["=", "title", markerPath], ["=", "exported", false]]));
    let inCatalog: unknown[] = [];
    for (let i = 0; i < 30 && inCatalog.length === 0; i++) {
      inCatalog = (await infra.queryPdb(`/pdb/query/v4/resources/File?query=${query}`)) as unknown[];
      if (inCatalog.length === 0) await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(inCatalog.length, 1);
    const second = await collector.run();
    assert.equal(second.code, 0, `second collecting run should be idempotent:\n${second.stdout}`);
  });

  it("a filter that matches nothing finds nothing", async () => {
    assert.deepEqual(await infra.exportedResources("file", { tag: "no_such_tag" }), []);
    assert.deepEqual(await infra.exportedResources("file", { tag: TAG, certname: "pup-host-collect" }), []);
  });

  it("stop() leaves no process it started", async () => {
    const pids = await Promise.all(["postgres", "puppetdb", "puppetserver"].map(async (n) =>
      Number(await fs.readFile(path.join(infra.stateDir, "pids", `${n}.pid`), "utf8"))));
    assert.ok(pids.every((p) => alive(p)), "every service runs before stop()");
    await infra.stop();
    assert.deepEqual(pids.filter((p) => alive(p)), []);
    const listening = (await cmd("ss", ["-Hltn"])).stdout;
    assert.doesNotMatch(listening, /:(8140|8081|18080|54329)\s/);
  });
});
