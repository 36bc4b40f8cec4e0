import type { SimConfig } from "./config";
import type { Etcd } from "./etcd";
import type { Knobs } from "./knobs";
import type { TlsFiles } from "./pki";

export interface ServerState {
  cfg: SimConfig;
  knobs: Knobs;
  commit: string;
  tls: TlsFiles;
  cacerts: Buffer;
  caHash: string;
  // The passwd the supervisor authenticates with, loaded at start: like k3s's basic-auth authenticator it is
  // not reloaded when `k3s token rotate` rewrites the passwd file, only on a restart.
  serverPassword: string;
  agentPassword: string;
  passwdFile: string;
  serverDir: string;
  apiReady: boolean;
  etcd: Etcd;
  primaryIp: string;
}

/** The apiserver answers only once started, and only while its etcd has a quorum. */
export function apiAvailable(st: ServerState): boolean {
  return st.apiReady && st.etcd.quorum().ok;
}
