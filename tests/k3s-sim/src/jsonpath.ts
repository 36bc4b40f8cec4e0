// The kubectl JSONPath subset the project uses: {.a.b}, [*], [N], [?(@.k=="v")], several {} templates.
function step(values: unknown[], seg: string): unknown[] {
  const out: unknown[] = [];
  for (const v of values) {
    if (v === null || typeof v !== "object") continue;
    if (seg.startsWith("=")) { if (seg.slice(1) in (v as object)) out.push((v as Record<string, unknown>)[seg.slice(1)]); }
    else if (seg === "*") out.push(...(Array.isArray(v) ? v : Object.values(v)));
    else if (/^\d+$/.test(seg)) { if (Array.isArray(v) && v.length > Number(seg)) out.push(v[Number(seg)]); }
    else if (seg.startsWith("?")) {
      const m = /^\?\(@\.([\w.-]+)\s*==\s*["']([^"']*)["']\)$/.exec(seg);
      if (!m) throw new Error(`unsupported JSONPath filter ${seg}`);
      for (const item of Array.isArray(v) ? v : []) {
        const got = m[1].split(".").reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), item);
        if (String(got) === m[2]) out.push(item);
      }
    } else if (seg in (v as object)) out.push((v as Record<string, unknown>)[seg]);
  }
  return out;
}

function evalExpr(obj: unknown, expr: string): string {
  const segs: string[] = [];
  // Keys as kubectl takes them: .a.b, with \. for a dot inside a key (annotations), or ['a.b/c'].
  const re = /\.((?:[\w/-]|\\\.)+)|\[([^\]]+)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(expr)) !== null) {
    if (m[1] !== undefined) segs.push(m[1].replace(/\\\./g, "."));
    else segs.push(/^(['"]).*\1$/.test(m[2]) ? `=${m[2].slice(1, -1)}` : m[2]);
  }
  if (expr === "" || expr === ".") return JSON.stringify(obj);
  const vals = segs.reduce<unknown[]>((acc, s) => step(acc, s), [obj]);
  return vals.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(" ");
}

export function jsonpath(obj: unknown, template: string): string {
  return template.replace(/\{([^}]*)\}/g, (_all, expr: string) => evalExpr(obj, expr.trim()));
}
