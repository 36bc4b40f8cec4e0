// The admin kubeconfig: read from the first server once it verified, its API address rewritten to the
// public endpoint and its `default` names replaced by the cluster's, so it can sit beside other contexts.
import * as pulumi from "@pulumi/pulumi";
import { parseDocument, stringify } from "yaml";
import { SshTarget, commandOn, connectionArgs } from "./bootstrap";
import { RemoteCommand } from "./remote/command";
import { STEP_TIMEOUTS, readKubeconfigScript } from "./bootstrap-scripts";

/** `https://host:6443` from a bare host/IP (IPv6 bracketed) or a URL given as is. */
export function apiServerUrl(endpoint: string, port = 6443): string {
  if (/^https:\/\//.test(endpoint)) return endpoint;
  const host = endpoint.includes(":") ? `[${endpoint}]` : endpoint;
  return `https://${host}:${port}`;
}

/** Renames k3s's single `default` cluster/user/context to `clusterName` and points it at `serverUrl`. */
export function rewriteKubeconfig(text: string, clusterName: string, serverUrl: string): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new Error(`the kubeconfig read from the first server is not YAML: ${doc.errors[0].message}`);
  }
  const cfg = doc.toJS() as any;
  const clusters = cfg?.clusters, users = cfg?.users, contexts = cfg?.contexts;
  if (!Array.isArray(clusters) || clusters.length !== 1 || !Array.isArray(users) || users.length !== 1
    || !Array.isArray(contexts) || contexts.length !== 1) {
    throw new Error("the kubeconfig read from the first server does not hold exactly one cluster, user and context as k3s writes it");
  }
  clusters[0].name = clusterName;
  clusters[0].cluster.server = serverUrl;
  users[0].name = clusterName;
  contexts[0].name = clusterName;
  contexts[0].context.cluster = clusterName;
  contexts[0].context.user = clusterName;
  cfg["current-context"] = clusterName;
  return stringify(cfg);
}

export interface KubeconfigArgs {
  clusterName: string;
  ssh: SshTarget;
  /** Public address (or URL) kubectl uses; must be among the servers' tls-san. */
  apiEndpoint: pulumi.Input<string>;
  /** Re-read the file when this changes (the first server's CA hash: a new server has a new CA). */
  trigger: pulumi.Input<string>;
}

/** Reads k3s.yaml over SSH; returns the rewritten kubeconfig as a secret. */
export function fetchKubeconfig(name: string, args: KubeconfigArgs, opts: pulumi.CustomResourceOptions): pulumi.Output<string> {
  const read = new RemoteCommand(name, {
    connection: connectionArgs(args.ssh, name),
    create: commandOn(args.ssh, readKubeconfigScript(), STEP_TIMEOUTS.kubeconfig),
    // The file holds the cluster-admin client key: never shown, kept only as a secret output.
    logging: "none",
    captureStdout: true,
    timeoutSeconds: STEP_TIMEOUTS.kubeconfig,
    rerunOn: [args.trigger],
  }, opts);
  return pulumi.secret(pulumi.all([read.stdout, args.apiEndpoint]).apply(([text, endpoint]) =>
    rewriteKubeconfig(text, args.clusterName, apiServerUrl(endpoint))));
}
