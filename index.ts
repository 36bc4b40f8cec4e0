// `pulumi up`: read and validate the stack's settings, build the cluster, export what users read
// with `pulumi stack output`.
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, NAMESPACE } from "./components/config";
import { ClusterComponent } from "./components/cluster";

const raw = Object.fromEntries(
  Object.entries(pulumi.runtime.allConfig()).filter(([key]) => key.startsWith(`${NAMESPACE}:`)),
);
const config = loadConfig(raw);
const cluster = new ClusterComponent(config.clusterName, { config });

export const serverPublicIps = cluster.serverPublicIps;
export const serverPrivateIps = cluster.serverPrivateIps;
export const agentPrivateIps = cluster.agentPrivateIps;
export const serverUrl = cluster.serverUrl;
export const apiEndpoint = cluster.apiEndpoint;
export const verification = cluster.verification;
export const nodes = cluster.nodes;
export const token = cluster.token;
export const agentToken = cluster.agentToken;
export const kubeconfig = cluster.kubeconfig;
