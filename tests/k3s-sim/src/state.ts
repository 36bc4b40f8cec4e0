import type { ClusterStore } from "./cluster-store";
import type { SimConfig } from "./config";
import type { Knobs } from "./knobs";
import type { TlsFiles } from "./pki";

export interface ServerState {
  cfg: SimConfig;
  knobs: Knobs;
  tls: TlsFiles;
  cacerts: Buffer;
  caHash: string;
  serverPassword: string;
  agentPassword: string;
  apiReady: boolean;
  store: ClusterStore;
  storeUrl?: string;   // where the cluster's shared state lives when this server joined another
  primaryIp: string;
}
