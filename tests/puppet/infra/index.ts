// Real Puppet infrastructure for the tests: PostgreSQL, PuppetDB and puppetserver from Debian's packages,
// started without systemd, all state under one directory on the host's disk. Nodes reach puppetserver as
// `puppet.test` = 198.51.100.1:8140 (the host's address on the test bridge) and nothing else: PuppetDB listens
// on loopback only (TLS on 127.0.0.1:8081 for puppetserver, which resolves puppet.test to 127.0.0.1 in its own
// mount namespace; plain HTTP on 127.0.0.1:18080 for the tests' queries), as in an estate where only the
// puppetserver talks to PuppetDB.
import { promises as fs } from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { logbackXml, puppetdbConf, puppetdbConfD, routesYaml, serverConfD, serverPuppetConf } from "./config-files";
import { alive, cmd, log, rssMiB, startDaemon, stopFromPidFile, stopPid, waitFor } from "./daemon";
import { startPostgres } from "./postgres";
import { ensureBridge } from "../../rig/nodes";

export const SERVER_NAME = "puppet.test";
export const SERVER_IP = "198.51.100.1";
export const PUPPETDB_HTTP_PORT = 18080;
const DEFAULT_STATE = "/var/lib/k3s-cluster-tests/puppet-infra";
const START_TIMEOUT_MS = 240_000;
const MODULE_CONTENT = ["metadata.json", "hiera.yaml", "data", "manifests", "functions", "types", "lib", "facts.d",
  "files", "templates", "locales", "tasks", "plans"];

export interface InfraOptions {
  /** Where all state lives (wiped at start); must be on ext4 or tmpfs and traversable by puppet users. */
  stateDir?: string;
  /** Extra JVM flags for puppetserver / PuppetDB (memory is capped by default). */
  serverJavaArgs?: string[];
  puppetdbJavaArgs?: string[];
}

export interface ExportFilter {
  certname?: string;
  title?: string;
  tag?: string;
  /** Exact parameter values, e.g. `{ cluster_name: "demo" }`. */
  parameters?: Record<string, string>;
}

export interface PdbResource {
  certname: string; type: string; title: string; exported: boolean; tags: string[];
  parameters: Record<string, unknown>; file?: string; line?: number;
}

export interface PuppetInfra {
  readonly stateDir: string;
  /** The server's certname and how nodes reach it: put `hosts` into each node's /etc/hosts. */
  readonly serverName: string;
  readonly serverIp: string;
  readonly hosts: Record<string, string>;
  readonly puppetdbUrl: string;
  /** puppetserver's code dir; the environment `production` lives in `environmentDir`. */
  readonly codeDir: string;
  readonly environmentDir: string;
  /** The file bind-mounted over /etc/hosts for host-side agents (`puppet.test` → bridge address). */
  readonly hostsFile: string;
  /** The server's own ssldir (its CA certificate is `certs/ca.pem`). */
  readonly ssldir: string;
  /** Milliseconds from the call to every service ready. */
  readonly startupMs: number;
  /** Certnames the CA has signed, the server's own included. */
  certnames(): Promise<string[]>;
  /** GET on PuppetDB's query API (plain HTTP, loopback); the parsed JSON. */
  queryPdb(pathAndQuery: string): Promise<unknown>;
  /** Exported resources of `type` matching `filter` (empty list when none). */
  exportedResources(type: string, filter?: ExportFilter): Promise<PdbResource[]>;
  /** Waits until PuppetDB holds at least one such export; returns them. */
  waitForExport(type: string, filter: ExportFilter, timeoutMs: number): Promise<PdbResource[]>;
  /** Copies a module directory into the production environment as `name`. */
  installModule(sourceDir: string, name: string): Promise<void>;
  /** Replaces the production environment's `manifests/site.pp`. */
  writeSiteManifest(text: string): Promise<void>;
  /** Everything PuppetDB stores (facts, catalogs, exports, reports) as one SQL text. */
  dumpDatabase(): Promise<string>;
  /** Resident memory in MiB of each service. */
  memory(): Record<string, number>;
  stop(): Promise<void>;
}

/** The Puppet type name as PuppetDB spells it: `k3s_cluster_info` → `K3s_cluster_info`. */
export function pdbTypeName(type: string): string {
  return type.split("::").map((s) => s.charAt(0).toUpperCase() + s.slice(1)).join("::");
}

function httpGetJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 15_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        if (res.statusCode !== 200) {
          reject(new Error(`PuppetDB ${url} answered ${res.statusCode}: ${body.slice(0, 500)}`));
          return;
        }
        try { resolve(JSON.parse(body)); } catch (e) { reject(new Error(`PuppetDB ${url}: not JSON: ${body.slice(0, 200)}`)); }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`PuppetDB ${url}: no answer in 15 s`)));
    req.on("error", reject);
  });
}

async function hasLocalAddress(ip: string): Promise<boolean> {
  const res = await cmd("ip", ["-4", "-o", "addr", "show"], { allowFail: true });
  return res.stdout.includes(` ${ip}/`);
}

async function writeOwned(file: string, content: string, owner: string, mode: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content, { mode });
  await fs.chmod(file, mode);
  await cmd("chown", [owner, file]);
}

async function readRestartFile(file: string): Promise<boolean> {
  try { return (await fs.readFile(file, "utf8")).startsWith("1"); } catch { return false; }
}

/** Stops whatever an earlier (crashed) run left in this state dir, by its recorded PIDs. */
async function stopLeftovers(stateDir: string): Promise<void> {
  await stopFromPidFile("puppetserver", path.join(stateDir, "pids/puppetserver.pid"), /puppetserver/);
  await stopFromPidFile("puppetdb", path.join(stateDir, "pids/puppetdb.pid"), /puppetdb/);
  await stopFromPidFile("postgres", path.join(stateDir, "pids/postgres.pid"), /postgres/, "SIGINT");
}

export async function startPuppetInfra(opts: InfraOptions = {}): Promise<PuppetInfra> {
  const t0 = Date.now();
  const stateDir = opts.stateDir ?? process.env.K3S_TEST_PUPPET_STATE ?? DEFAULT_STATE;
  await stopLeftovers(stateDir);
  await fs.rm(stateDir, { recursive: true, force: true });
  for (const d of ["pids", "code/environments/production/modules", "code/environments/production/manifests"]) {
    await fs.mkdir(path.join(stateDir, d), { recursive: true, mode: 0o755 });
  }
  await fs.chmod(stateDir, 0o755);
  for (let d = path.dirname(stateDir); d !== "/"; d = path.dirname(d)) {
    const st = await fs.stat(d);
    if ((st.mode & 0o001) === 0) throw new Error(`puppet-infra: state dir parent ${d} is not traversable by the services' users (mode ${(st.mode & 0o777).toString(8)})`);
  }

  if (!(await hasLocalAddress(SERVER_IP))) {
    await ensureBridge();
  }

  const pids: Record<string, number> = {};
  const pidFile = (name: string) => path.join(stateDir, "pids", `${name}.pid`);
  const hostsFile = path.join(stateDir, "hosts");
  await fs.writeFile(hostsFile, `127.0.0.1 localhost\n${SERVER_IP} ${SERVER_NAME}\n`, { mode: 0o644 });
  // puppetserver reaches PuppetDB (which listens on loopback only) as puppet.test, the name its certificate has.
  const serverHostsFile = path.join(stateDir, "hosts-puppetserver");
  await fs.writeFile(serverHostsFile, `127.0.0.1 localhost ${SERVER_NAME}\n`, { mode: 0o644 });

  const codeDir = path.join(stateDir, "code");
  const confDir = path.join(stateDir, "puppet");
  const ssldir = path.join(confDir, "ssl");
  const cadir = path.join(confDir, "ca");
  const srvDir = path.join(stateDir, "puppetserver");
  const serverPaths = {
    confDir, codeDir, ssldir, cadir, certname: SERVER_NAME, serverIp: SERVER_IP,
    varDir: path.join(srvDir, "var"), runDir: path.join(srvDir, "run"), logDir: path.join(srvDir, "log"),
    puppetdbUrl: `https://${SERVER_NAME}:8081`, logback: path.join(srvDir, "logback.xml"),
  };
  const pdbDir = path.join(stateDir, "puppetdb");
  const pdbSsl = path.join(pdbDir, "ssl");

  let pg: Awaited<ReturnType<typeof startPostgres>> | undefined;
  try {
    // PostgreSQL and the CA do not depend on each other: set them up side by side.
    const pgPromise = startPostgres(path.join(stateDir, "postgres")).then((pg) => {
      pids.postgres = pg.pid;
      return fs.copyFile(pg.pidFile, pidFile("postgres")).then(() => pg);
    });
    const caPromise = (async () => {
      for (const d of [confDir, serverPaths.varDir, serverPaths.runDir, serverPaths.logDir, path.join(srvDir, "conf.d")]) {
        await fs.mkdir(d, { recursive: true });
      }
      await fs.writeFile(path.join(confDir, "puppet.conf"), serverPuppetConf(serverPaths));
      await fs.writeFile(path.join(confDir, "routes.yaml"), routesYaml);
      await fs.writeFile(path.join(confDir, "puppetdb.conf"), puppetdbConf(serverPaths.puppetdbUrl));
      await fs.writeFile(serverPaths.logback, logbackXml(path.join(serverPaths.logDir, "puppetserver.log")));
      for (const f of ["auth.conf", "ca.conf", "metrics.conf", "web-routes.conf"]) {
        await fs.copyFile(path.join("/etc/puppet/puppetserver/conf.d", f), path.join(srvDir, "conf.d", f));
      }
      for (const [f, text] of Object.entries(serverConfD(serverPaths))) {
        await fs.writeFile(path.join(srvDir, "conf.d", f), text);
      }
      await cmd("puppetserver", ["ca", "setup", "--config", path.join(confDir, "puppet.conf"),
        "--certname", SERVER_NAME, "--subject-alt-names", `${SERVER_NAME},IP:${SERVER_IP}`]);
      await cmd("chown", ["-R", "puppet:puppet", confDir, srvDir]);
      // PuppetDB presents the server's own certificate: nodes and puppetserver reach it as puppet.test.
      await fs.mkdir(pdbSsl, { recursive: true });
      await fs.copyFile(path.join(ssldir, "certs", `${SERVER_NAME}.pem`), path.join(pdbSsl, "public.pem"));
      await fs.copyFile(path.join(ssldir, "private_keys", `${SERVER_NAME}.pem`), path.join(pdbSsl, "private.pem"));
      await fs.copyFile(path.join(ssldir, "certs", "ca.pem"), path.join(pdbSsl, "ca.pem"));
    })();
    // Both settle before a failure is thrown, so a PostgreSQL that did start gets stopped below.
    const [pgResult, caResult] = await Promise.allSettled([pgPromise, caPromise]);
    if (pgResult.status === "rejected") throw pgResult.reason;
    if (caResult.status === "rejected") throw caResult.reason;
    pg = pgResult.value;

    // PuppetDB.
    const pdbLog = path.join(pdbDir, "puppetdb.log");
    await fs.mkdir(path.join(pdbDir, "var"), { recursive: true });
    await fs.mkdir(path.join(pdbDir, "run"), { recursive: true });
    await fs.writeFile(path.join(pdbDir, "logback.xml"), logbackXml(pdbLog));
    for (const [f, text] of Object.entries(puppetdbConfD({
      varDir: path.join(pdbDir, "var"), logback: path.join(pdbDir, "logback.xml"), pgPort: pg.port,
      pgPassword: pg.password, sslHost: "127.0.0.1", httpPort: PUPPETDB_HTTP_PORT,
      sslKey: path.join(pdbSsl, "private.pem"), sslCert: path.join(pdbSsl, "public.pem"), sslCa: path.join(pdbSsl, "ca.pem"),
    }))) {
      await writeOwned(path.join(pdbDir, "conf.d", f), text, "puppetdb:puppetdb", 0o600);
    }
    await fs.copyFile("/etc/puppetdb/conf.d/auth.conf", path.join(pdbDir, "conf.d", "auth.conf"));
    await cmd("chown", ["-R", "puppetdb:puppetdb", pdbDir]);
    await fs.chmod(path.join(pdbSsl, "private.pem"), 0o600);
    const pdbRestart = path.join(pdbDir, "run", "restart");
    await fs.writeFile(pdbRestart, "0");
    await cmd("chown", ["puppetdb:puppetdb", pdbRestart]);
    pids.puppetdb = await startDaemon({
      name: "puppetdb", user: "puppetdb", logFile: path.join(pdbDir, "console.log"), pidFile: pidFile("puppetdb"),
      env: { HOME: path.join(pdbDir, "var"), PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
      argv: ["/usr/bin/java", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        ...(opts.puppetdbJavaArgs ?? []), "-Djava.security.egd=/dev/urandom",
        "-cp", "/usr/share/puppetdb/puppetdb.jar", "clojure.main", "-m", "puppetlabs.puppetdb.core", "services",
        "--config", path.join(pdbDir, "conf.d"), "--bootstrap-config", "/etc/puppetdb/bootstrap.cfg",
        "--restart-file", pdbRestart],
    });

    // puppetserver, started while PuppetDB is still booting: it needs PuppetDB only to serve requests.
    const srvRestart = path.join(serverPaths.runDir, "restart");
    await fs.writeFile(srvRestart, "0");
    await cmd("chown", ["puppet:puppet", srvRestart]);
    pids.puppetserver = await startDaemon({
      name: "puppetserver", user: "puppet", logFile: path.join(srvDir, "console.log"), pidFile: pidFile("puppetserver"),
      hostsFile: serverHostsFile,
      env: { HOME: serverPaths.varDir, PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
      argv: ["/usr/bin/java", "-Xms512m", "-Xmx1g", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        ...(opts.serverJavaArgs ?? []),
        "-Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger", "-Djruby.lib=/usr/share/jruby/lib",
        "-XX:+CrashOnOutOfMemoryError", "-jar", "/usr/share/puppetserver/puppetserver.jar",
        "--config", path.join(srvDir, "conf.d"), "--bootstrap-config", "/etc/puppet/puppetserver/services.d",
        "--restart-file", srvRestart],
    });

    await Promise.all([
      waitFor("PuppetDB (restart file says 1)", START_TIMEOUT_MS, () => readRestartFile(pdbRestart),
        { pid: pids.puppetdb, logFile: pdbLog }),
      waitFor("puppetserver (restart file says 1)", START_TIMEOUT_MS, () => readRestartFile(srvRestart),
        { pid: pids.puppetserver, logFile: path.join(serverPaths.logDir, "puppetserver.log") }),
    ]);
  } catch (err) {
    await stopAll(pids);
    throw err;
  }

  const pdbBase = `http://127.0.0.1:${PUPPETDB_HTTP_PORT}`;
  const environmentDir = path.join(codeDir, "environments", "production");
  const queryPdb = (p: string) => httpGetJson(pdbBase + p);
  const exportedResources = async (type: string, filter: ExportFilter = {}): Promise<PdbResource[]> => {
    const clauses: unknown[] = [["=", "exported", true]];
    if (filter.certname) clauses.push(["=", "certname", filter.certname]);
    if (filter.title) clauses.push(["=", "title", filter.title]);
    if (filter.tag) clauses.push(["=", "tag", filter.tag]);
    for (const [k, v] of Object.entries(filter.parameters ?? {})) clauses.push(["=", ["parameter", k], v]);
    const query = encodeURIComponent(JSON.stringify(["and", ...clauses]));
    return (await queryPdb(`/pdb/query/v4/resources/${pdbTypeName(type)}?query=${query}`)) as PdbResource[];
  };
  const startupMs = Date.now() - t0;
  log(`PostgreSQL + PuppetDB + puppetserver ready in ${(startupMs / 1000).toFixed(1)} s (state in ${stateDir})`);

  return {
    stateDir, serverName: SERVER_NAME, serverIp: SERVER_IP, hosts: { [SERVER_NAME]: SERVER_IP },
    puppetdbUrl: serverPaths.puppetdbUrl, codeDir, environmentDir, hostsFile, ssldir, startupMs,
    async certnames() {
      const signed = await fs.readdir(path.join(cadir, "signed")).catch(() => [] as string[]);
      return signed.filter((f) => f.endsWith(".pem")).map((f) => f.slice(0, -4)).sort();
    },
    queryPdb,
    exportedResources,
    async waitForExport(type, filter, timeoutMs) {
      let found: PdbResource[] = [];
      await waitFor(`PuppetDB to hold an exported ${pdbTypeName(type)} matching ${JSON.stringify(filter)}`,
        timeoutMs, async () => (found = await exportedResources(type, filter)).length > 0,
        { pid: pids.puppetdb, intervalMs: 1000 });
      return found;
    },
    async installModule(sourceDir, name) {
      const dest = path.join(environmentDir, "modules", name);
      await fs.rm(dest, { recursive: true, force: true });
      await fs.mkdir(dest, { recursive: true });
      // What a built module ships; specs, fixtures and their symlinks stay behind.
      for (const entry of MODULE_CONTENT) {
        const src = path.join(sourceDir, entry);
        if (await fs.stat(src).then(() => true, () => false)) {
          await fs.cp(src, path.join(dest, entry), { recursive: true });
        }
      }
      await cmd("chmod", ["-R", "a+rX", dest]);
    },
    dumpDatabase: () => pg!.dump(),
    async writeSiteManifest(text) {
      await fs.writeFile(path.join(environmentDir, "manifests", "site.pp"), text, { mode: 0o644 });
    },
    memory() {
      return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, rssMiB(pid)]));
    },
    async stop() {
      await stopAll(pids);
      log("PostgreSQL, PuppetDB and puppetserver stopped");
    },
  };
}

async function stopAll(pids: Record<string, number>): Promise<void> {
  const jvms = (["puppetserver", "puppetdb"] as const).filter((n) => pids[n] !== undefined && alive(pids[n]));
  await Promise.all(jvms.map((n) => stopPid(n, pids[n])));
  if (pids.postgres !== undefined) await stopPid("postgres", pids.postgres, "SIGINT");
  for (const n of Object.keys(pids)) delete pids[n];
}

