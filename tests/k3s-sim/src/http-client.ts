import * as https from "node:https";

export interface Reply { status: number; body: Buffer; localAddress?: string; }

export interface RequestOptions {
  method?: string;
  ca?: string | Buffer;          // pinned CA; absent = TLS verification off (the one anonymous /cacerts fetch)
  basic?: { user: string; password: string };
  cert?: string | Buffer; key?: string | Buffer;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

export function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.basic) headers.authorization = `Basic ${Buffer.from(`${opts.basic.user}:${opts.basic.password}`).toString("base64")}`;
  if (opts.body !== undefined) { headers["content-type"] = "application/json"; headers["content-length"] = String(Buffer.byteLength(opts.body)); }
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port || 443, path: u.pathname + u.search, method: opts.method ?? "GET", headers,
      ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.ca !== undefined, agent: false,
      timeout: opts.timeoutMs ?? 10000,
    }, (res) => {
      const chunks: Buffer[] = [];
      const localAddress = res.socket?.localAddress;
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), localAddress }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timed out after ${opts.timeoutMs ?? 10000} ms`)));
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
