import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { applyOp, ClusterState, Member, Op, OpResult, TooManyLearners } from "./cluster-state";
import { log } from "./log";

// The embedded etcd of a k3s server, reduced to what its clients observe: every server keeps a replica of the
// cluster state on disk; the first voting member (in join order) that is reachable leads and applies writes;
// a write, and the apiserver itself, need a majority of voting members reachable. Peers talk over :6443 with
// the cluster's admin client certificate, as etcd peers use their own certificates rather than the join token.

// k3s runs etcd with a 500 ms heartbeat and a 5 s election timeout; a member unheard of for that long is down.
// The long window also keeps a loaded test machine's stalls from passing for a lost quorum.
const HEARTBEAT_MS = 500;
const ALIVE_MS = 5000;
const PEER_TIMEOUT_MS = 1000;
// A forwarded write waits for the leader's own replication round.
const PROPOSE_TIMEOUT_MS = 5000;

export class NoQuorum extends Error {}

export interface PeerTls { ca: Buffer; cert: Buffer; key: Buffer; }

interface Quorum { ok: boolean; alive: number; voters: number; need: number; unreachable: string[]; }

export class Etcd {
  removed = false;
  private lastSeen = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private quorumWas?: boolean;
  private rounds = 0;
  private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 4 });

  constructor(readonly dir: string, public state: ClusterState, public selfId: string, private readonly tls: PeerTls) {}

  static file(dir: string): string { return path.join(dir, "sim-state.json"); }

  static load(dir: string, tls: PeerTls): Etcd | undefined {
    try {
      const saved = JSON.parse(fs.readFileSync(Etcd.file(dir), "utf8")) as { selfId: string; state: ClusterState };
      return new Etcd(dir, saved.state, saved.selfId, tls);
    } catch {
      return undefined;
    }
  }

  persist(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${Etcd.file(this.dir)}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ selfId: this.selfId, state: this.state }), { mode: 0o600 });
    fs.renameSync(tmp, Etcd.file(this.dir));
  }

  self(): Member | undefined { return this.state.members.find((m) => m.id === this.selfId); }

  alive(m: Member): boolean {
    if (m.id === this.selfId) return !this.removed;
    return Date.now() - (this.lastSeen.get(m.id) ?? 0) < ALIVE_MS;
  }

  quorum(): Quorum {
    const voters = this.state.members.filter((m) => !m.isLearner);
    const need = Math.floor(voters.length / 2) + 1;
    const up = voters.filter((m) => this.alive(m));
    const ok = !this.removed && this.self() !== undefined && up.length >= need;
    const q = { ok, alive: up.length, voters: voters.length, need, unreachable: voters.filter((m) => !this.alive(m)).map((m) => m.name) };
    this.observe(q);
    return q;
  }

  // Logged when first seen, by a request or a heartbeat, so the log says why the apiserver refuses the moment it does.
  private observe(q: Quorum): void {
    if (this.removed || this.rounds === 0 || q.ok === this.quorumWas) return;
    if (q.ok) {
      if (this.quorumWas === false) log("info", `etcd quorum restored: ${q.alive} of ${q.voters} voting members reachable`);
    } else {
      log("error", `etcd has no quorum: ${q.alive} of ${q.voters} voting members reachable, ${q.need} needed ` +
        `(unreachable: ${q.unreachable.join(", ")}); kube-apiserver answers 503 until a majority is back`);
    }
    this.quorumWas = q.ok;
  }

  leader(): Member | undefined {
    return this.state.members.find((m) => !m.isLearner && this.alive(m));
  }

  /** The state for a read, as a quorum read: refused without a majority. */
  read(): ClusterState {
    const q = this.quorum();
    if (!q.ok) throw new NoQuorum(this.removed ? "etcd member removed" : "etcdserver: no leader");
    return this.state;
  }

  adopt(incoming: ClusterState): boolean {
    if (incoming.rev <= this.state.rev) return false;
    const wasMember = this.self() !== undefined;
    this.state = incoming;
    this.persist();
    if (wasMember && this.self() === undefined) this.markRemoved();
    return true;
  }

  markRemoved(): void {
    if (this.removed) return;
    this.removed = true;
    fs.writeFileSync(path.join(this.dir, "tombstone"), "", { mode: 0o600 });
    log("info", "This node has been removed from the cluster - please restart k3s to rejoin the cluster");
    this.stop();
  }

  start(): void {
    if (this.timer) return;
    let running = false;
    this.timer = setInterval(() => {
      if (running) return;
      running = true;
      this.heartbeat().finally(() => { running = false; });
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async heartbeat(): Promise<void> {
    const peers = this.state.members.filter((m) => m.id !== this.selfId);
    await Promise.all(peers.map(async (m) => {
      try {
        const r = await this.call(m.url, "GET", "/v1-k3s/sim/etcd/status");
        if (r.status !== 200) return;
        const st = JSON.parse(r.body) as { rev: number; removed: boolean };
        if (st.removed) return;
        this.lastSeen.set(m.id, Date.now());
        if (st.rev > this.state.rev) {
          const full = await this.call(m.url, "GET", "/v1-k3s/sim/etcd/state");
          if (full.status === 200) this.adopt(JSON.parse(full.body) as ClusterState);
        }
      } catch { /* unreachable: its lastSeen ages out */ }
    }));
    // Before the first round a restarted server has seen no peer yet: that is not a loss of quorum.
    this.rounds++;
    this.quorum();
  }

  /** A write: applied by the leader, committed once a majority of voting members holds it. */
  async propose(op: Op): Promise<OpResult> {
    for (;;) {
      const leader = this.leader();
      if (!this.quorum().ok || !leader) throw new NoQuorum("etcdserver: request timed out");
      if (leader.id === this.selfId) return this.applyAsLeader(op);
      let r: PeerReply;
      try {
        r = await peerCall(this.agent, this.tls, leader.url, "POST", "/v1-k3s/sim/etcd/propose", JSON.stringify(op), PROPOSE_TIMEOUT_MS);
      } catch {
        // A leader that went away: the write waits for the next one, as it does through an etcd election.
        this.lastSeen.delete(leader.id);
        continue;
      }
      const answer = proposeAnswer(r, leader.url);
      // The leader's state comes back with the answer, so a read on this server right after sees the write.
      this.adopt(answer.state);
      return answer.result;
    }
  }

  async applyAsLeader(op: Op): Promise<OpResult> {
    const before = this.state.members;
    const next = JSON.parse(JSON.stringify(this.state)) as ClusterState;
    const result = applyOp(next, op, (m) => this.alive(m));
    next.rev = this.state.rev + 1;
    this.state = next;
    this.persist();
    const voters = next.members.filter((m) => !m.isLearner);
    const need = Math.floor(voters.length / 2) + 1;
    const selfVotes = voters.some((m) => m.id === this.selfId) ? 1 : 0;
    const targets = [...new Map([...before, ...next.members].filter((m) => m.id !== this.selfId).map((m) => [m.id, m])).values()];
    const body = JSON.stringify(next);
    const acks = await new Promise<number>((resolve) => {
      let count = selfVotes;
      let pending = targets.length;
      if (count >= need || pending === 0) resolve(count);
      for (const m of targets) {
        peerCall(this.agent, this.tls, m.url, "PUT", "/v1-k3s/sim/etcd/state", body, PEER_TIMEOUT_MS).then((r) => {
          if (r.status === 200 && voters.some((v) => v.id === m.id)) count++;
        }, () => undefined).finally(() => {
          pending--;
          if (count >= need || pending === 0) resolve(count);
        });
      }
    });
    if (this.self() === undefined) this.markRemoved();
    if (acks < need) throw new NoQuorum("etcdserver: request timed out");
    return result;
  }

  private call(url: string, method: string, p: string, body?: string): Promise<PeerReply> {
    return peerCall(this.agent, this.tls, url, method, p, body, PEER_TIMEOUT_MS);
  }

  /** A server not yet in the cluster asks an existing one to add it and takes the resulting state. */
  static async joinVia(url: string, op: Op, tls: PeerTls): Promise<{ member: Member; state: ClusterState }> {
    const agent = new https.Agent({ keepAlive: false });
    const r = await peerCall(agent, tls, url, "POST", "/v1-k3s/sim/etcd/propose", JSON.stringify(op), PROPOSE_TIMEOUT_MS);
    const answer = proposeAnswer(r, url);
    if (!answer.result.ok || !answer.result.member) throw new Error(`etcd member add via ${url}: ${JSON.stringify(answer.result)}`);
    return { member: answer.result.member, state: answer.state };
  }
}

interface PeerReply { status: number; body: string; }

function proposeAnswer(r: PeerReply, url: string): { result: OpResult; state: ClusterState } {
  if (r.status === 500 && r.body.includes("too many learner")) throw new TooManyLearners();
  if (r.status === 503) throw new NoQuorum((JSON.parse(r.body) as { message: string }).message);
  if (r.status !== 200) throw new Error(`etcd proposal via ${url}: HTTP ${r.status}`);
  return JSON.parse(r.body) as { result: OpResult; state: ClusterState };
}

function peerCall(agent: https.Agent, tls: PeerTls, url: string, method: string, p: string, body: string | undefined, timeoutMs: number): Promise<PeerReply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: u.hostname, port: u.port, path: p, method, agent, ca: tls.ca, cert: tls.cert, key: tls.key, timeout: timeoutMs,
      headers: body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
