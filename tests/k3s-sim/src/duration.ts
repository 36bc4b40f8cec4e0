// Go's time.ParseDuration and Duration.String(), because kubectl takes --timeout in that grammar and echoes it
// back in its messages ("global timeout reached: 1m30s").
const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or throws with Go's message. */
export function parseGoDuration(text: string): number {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) { sign = rest[0] === "-" ? -1 : 1; rest = rest.slice(1); }
  if (rest === "") throw new Error(`time: invalid duration "${text}"`);
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(rest)) !== null) {
    total += Number(m[1]) * UNITS[m[2]];
    end = re.lastIndex;
  }
  if (end !== rest.length) {
    throw new Error(/^\d+(\.\d*)?$/.test(rest) ? `time: missing unit in duration "${text}"` : `time: invalid duration "${text}"`);
  }
  return sign * total;
}

/** Go's Duration.String() for millisecond values. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return "0s";
  const neg = ms < 0;
  let v = Math.abs(ms);
  let out: string;
  if (v < 1000) {
    out = `${trim(v)}ms`;
  } else {
    const h = Math.floor(v / 3_600_000);
    v -= h * 3_600_000;
    const m = Math.floor(v / 60_000);
    v -= m * 60_000;
    const s = `${trim(v / 1000)}s`;
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
  }
  return neg ? `-${out}` : out;
}

function trim(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}
