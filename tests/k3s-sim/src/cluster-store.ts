import * as fs from "node:fs";
import * as path from "node:path";
import { request } from "./http-client";
import { log } from "./log";

// The cluster's shared state (what etcd holds in k3s): the node list and the etcd learner in progress.
// The cluster-init server keeps it; servers that joined reach it over HTTPS with server credentials.
export interface NodeRecord {
  name: string;
  ip: string;
  role: "server" | "agent";
  version: string;
  labels: string[];
  createdAt: number;
  readyAt: number | null;   // null: never Ready
}

export class TooManyLearners extends Error {
  constructor() { super("etcdserver: too many learner members in cluster"); }
}

export interface ClusterStore {
  register(node: NodeRecord): Promise<NodeRecord>;
  list(): Promise<NodeRecord[]>;
  etcdJoin(name: string, delaySeconds: number): Promise<void>;
}

export class LocalStore implements ClusterStore {
  private nodes: NodeRecord[] = [];
  private learner?: { name: string; until: number };

  constructor(private readonly file: string) {
    try { this.nodes = JSON.parse(fs.readFileSync(file, "utf8")) as NodeRecord[]; } catch { this.nodes = []; }
  }

  async register(node: NodeRecord): Promise<NodeRecord> {
    const prev = this.nodes.find((n) => n.name === node.name);
    const rec = prev ? { ...node, createdAt: prev.createdAt } : node;
    this.nodes = [...this.nodes.filter((n) => n.name !== node.name), rec];
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(this.file, JSON.stringify(this.nodes), { mode: 0o600 });
    log("info", `Node ${node.name} (${node.role}, ${node.ip}) ${prev ? "re-registered" : "joined the cluster"}`);
    return rec;
  }

  async list(): Promise<NodeRecord[]> {
    return [...this.nodes].sort((a, b) => a.name.localeCompare(b.name));
  }

  // One learner at a time, as etcd allows: a second join while one is being promoted fails.
  async etcdJoin(name: string, delaySeconds: number): Promise<void> {
    const now = Date.now();
    if (this.learner && this.learner.until > now && this.learner.name !== name) {
      log("error", `etcd member ${name} rejected: learner ${this.learner.name} is still being promoted`);
      throw new TooManyLearners();
    }
    this.learner = { name, until: now + delaySeconds * 1000 };
    log("info", `Adding etcd learner ${name}; promotion in ${delaySeconds}s`);
  }
}

export class RemoteStore implements ClusterStore {
  constructor(private readonly url: string, private readonly ca: string, private readonly password: string) {}

  private async call(method: string, p: string, body?: unknown): Promise<Buffer> {
    const r = await request(`${this.url}${p}`, {
      method, ca: this.ca, basic: { user: "server", password: this.password },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status === 500 && r.body.toString().includes("too many learner")) throw new TooManyLearners();
    if (r.status !== 200) throw new Error(`${method} ${this.url}${p}: HTTP ${r.status}`);
    return r.body;
  }

  async register(node: NodeRecord): Promise<NodeRecord> {
    return JSON.parse((await this.call("POST", "/v1-k3s/sim/nodes", node)).toString()) as NodeRecord;
  }
  async list(): Promise<NodeRecord[]> {
    return JSON.parse((await this.call("GET", "/v1-k3s/sim/nodes")).toString()) as NodeRecord[];
  }
  async etcdJoin(name: string, delaySeconds: number): Promise<void> {
    await this.call("POST", "/v1-k3s/sim/etcd-join", { name, delaySeconds });
  }
}
