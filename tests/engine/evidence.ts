// What the rehearsal looks at after (and during) a run to prove the token stayed secret:
// process command lines on the host and every node, files on every node, and logs.
import * as fs from "node:fs";
import * as path from "node:path";

/** Samples /proc/<pid>/cmdline for every process on the machine (nodes' processes included). */
export class CommandLineSampler {
  private readonly seen = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  samples = 0;

  start(everyMs = 50): void {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }

  private sample(): void {
    this.samples++;
    let pids: string[];
    try {
      pids = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p));
    } catch {
      return;
    }
    for (const pid of pids) {
      try {
        const text = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
        if (text) this.seen.add(text);
      } catch {
        // the process ended between listing and reading
      }
    }
  }

  /** How many distinct command lines were seen, and those that contain any of the secrets. */
  findings(secrets: string[]): { distinct: number; leaks: string[] } {
    const leaks = [...this.seen].filter((line) => secrets.some((s) => line.includes(s)));
    return {
      distinct: this.seen.size,
      leaks: leaks.map((l) => secrets.reduce((line, s) => line.split(s).join("[SECRET]"), l).slice(0, 120)),
    };
  }
}

const SKIP_DIRS = new Set(["proc", "sys", "dev", "run"]);
const MAX_FILE_BYTES = 4 * 1024 * 1024;

export interface SecretFile {
  path: string;
  mode: string;
  uid: number;
  private: boolean;
}

/**
 * Every regular file under a node's root (seen from the host) that holds one of the secrets, with
 * whether only root can read it (owner root, no group or other bits). The scan is done from the host
 * so that no secret is ever put on a node's command line to search for it.
 */
export function filesHoldingSecrets(rootDir: string, secrets: string[]): SecretFile[] {
  const needles = secrets.filter((s) => s.length >= 8).map((s) => Buffer.from(s));
  const found: SecretFile[] = [];
  const walk = (dir: string, rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      const relPath = `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (rel === "" && SKIP_DIRS.has(entry.name)) continue;
        walk(full, relPath);
      } else if (entry.isFile()) {
        let stat: fs.Stats;
        try {
          stat = fs.statSync(full);
        } catch {
          continue;
        }
        if (stat.size === 0 || stat.size > MAX_FILE_BYTES) continue;
        const content = fs.readFileSync(full);
        if (!needles.some((n) => content.includes(n))) continue;
        found.push({
          path: relPath,
          mode: (stat.mode & 0o777).toString(8).padStart(4, "0"),
          uid: stat.uid,
          private: stat.uid === 0 && (stat.mode & 0o077) === 0,
        });
      }
    }
  };
  walk(rootDir, "");
  return found;
}

/** Lines of `text` that contain any secret, cut short so the report itself holds none. */
export function linesWithSecrets(text: string, secrets: string[]): string[] {
  return text
    .split("\n")
    .filter((line) => secrets.some((s) => s.length >= 8 && line.includes(s)))
    .map((line) => secrets.reduce((l, s) => l.split(s).join("[SECRET]"), line).slice(0, 120));
}
