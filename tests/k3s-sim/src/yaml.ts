// k3s config files are flat maps of scalars and lists; this subset parser keeps the bundle free of npm packages.
export type YamlValue = string | boolean | string[];

function unquote(raw: string): string {
  const s = raw.trim();
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) {
    return s.slice(1, -1).replace(/\\(["\\nt])/g, (_m, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
  }
  if (s.startsWith("'") && s.endsWith("'") && s.length >= 2) return s.slice(1, -1).replace(/''/g, "'");
  return s;
}

function stripComment(s: string): string {
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) { if (c === quote) quote = ""; continue; }
    if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(s[i - 1]))) return s.slice(0, i);
  }
  return s;
}

function scalar(raw: string): YamlValue {
  const s = raw.trim();
  if (s === "true") return true;
  if (s === "false") return false;
  if (s.startsWith("[") && s.endsWith("]")) {
    const inner = s.slice(1, -1).trim();
    return inner === "" ? [] : inner.split(",").map(unquote);
  }
  return unquote(s);
}

export function parseFlatYaml(text: string, file: string): Record<string, YamlValue> {
  const out: Record<string, YamlValue> = {};
  let listKey: string | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, i) => {
    const line = stripComment(rawLine).replace(/\s+$/, "");
    if (line.trim() === "" || line.trim() === "---") return;
    const item = /^\s*-\s*(.*)$/.exec(line);
    if (item && listKey !== undefined) {
      (out[listKey] as string[]).push(unquote(item[1]));
      return;
    }
    const kv = /^([A-Za-z0-9_.+-]+)\s*:(?:\s+(.*))?$/.exec(line);
    if (!kv) {
      // k3s rejects what it cannot parse; nested maps are not part of its config grammar.
      throw new Error(`${file}:${i + 1}: cannot parse "${line.trim()}": expected "key: value" or "- item"`);
    }
    const key = kv[1];
    const value = kv[2];
    if (value === undefined || value.trim() === "") {
      out[key] = [];
      listKey = key;
    } else {
      out[key] = scalar(value);
      listKey = undefined;
    }
  });
  return out;
}
