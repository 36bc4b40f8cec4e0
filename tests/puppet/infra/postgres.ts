// PuppetDB's database: a PostgreSQL cluster of our own in the state dir (not Debian's `15/main`), on
// loopback and a port of its own, so the suite never depends on or disturbs the machine's cluster.
import { promises as fs } from "node:fs";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { cmd, startDaemon, waitFor } from "./daemon";

export const PG_PORT = 54329;
const PG_BIN = "/usr/lib/postgresql/15/bin";

export interface Postgres {
  pid: number; port: number; password: string; pidFile: string;
  /** Plain-SQL dump of PuppetDB's whole database: everything it stores, to search for secrets. */
  dump(): Promise<string>;
}

export async function startPostgres(dir: string): Promise<Postgres> {
  const data = path.join(dir, "data");
  const socketDir = path.join(dir, "run");
  const logFile = path.join(dir, "postgres.log");
  await fs.mkdir(socketDir, { recursive: true });
  await cmd("chown", ["-R", "postgres:postgres", dir]);
  await cmd("setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", `${PG_BIN}/initdb`,
    "-D", data, "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256"]);
  const pidFile = path.join(dir, "postgres.pid");
  const pid = await startDaemon({
    name: "postgres", user: "postgres", logFile, pidFile,
    argv: [`${PG_BIN}/postgres`, "-D", data, "-k", socketDir, "-h", "127.0.0.1", "-p", String(PG_PORT),
      // Thrown away after every run: durability only costs time on a shared disk.
      "-c", "shared_buffers=32MB", "-c", "fsync=off", "-c", "full_page_writes=off"],
    env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
  });
  const psql = (db: string, sql: string) => cmd("setpriv", ["--reuid=postgres", "--regid=postgres",
    "--init-groups", `${PG_BIN}/psql`, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDir,
    "-p", String(PG_PORT), "-d", db], { input: sql, allowFail: true });
  await waitFor("PostgreSQL to accept connections", 60_000,
    async () => (await psql("postgres", "SELECT 1;")).code === 0, { pid, logFile });
  // The password reaches psql on stdin only, never on a command line.
  const password = randomBytes(18).toString("hex");
  for (const [db, sql] of [
    ["postgres", `CREATE ROLE puppetdb LOGIN PASSWORD '${password}';\n` +
      "CREATE DATABASE puppetdb ENCODING 'UTF8' TEMPLATE template0 OWNER puppetdb;\n"],
    ["puppetdb", "CREATE EXTENSION pg_trgm;\n"],
  ]) {
    const res = await psql(db, sql);
    if (res.code !== 0) throw new Error(`puppet-infra: setting up PuppetDB's database failed: ${res.stderr.trim()}`);
  }
  const dump = async () => (await cmd("setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups",
    `${PG_BIN}/pg_dump`, "-h", socketDir, "-p", String(PG_PORT), "--data-only", "puppetdb"], { timeoutMs: 60_000 })).stdout;
  return { pid, port: PG_PORT, password, pidFile, dump };
}
