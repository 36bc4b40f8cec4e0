// The join flow of a cluster, in order:
//   first server: bootstrap with cluster_init → ServerToken verifies it and yields the join token
//   each further server: joins (token file + puppet apply) only after the previous server verified
//   agents: created behind the first server's verification, joining with the agent token it returned
//   outputs: token, agentToken, kubeconfig (secrets) and the verification report
import * as pulumi from "@pulumi/pulumi";
import { NodeBootstrap, SshTarget } from "./bootstrap";
import { checkCluster, type NodeStatus } from "./cluster-check";
import { ClusterPolicy } from "./cluster-policy";
import { NodeMembership } from "./membership";
import { afterAgentUpdateScript, beforeAgentUpdateScript } from "./membership-scripts";
import { rotateToken } from "./token-rotation";
import { DEFAULT_PATHS } from "./bootstrap-scripts";
import { fetchKubeconfig } from "./kubeconfig";
import { renderManifest } from "./puppet-manifest";
import { PublicVerificationReport, ServerToken } from "./server-token";

/** One machine as the join flow needs it: an EC2 instance or a host from `k3s-cluster:hosts`. */
export interface NodeHandle {
  /** Kubernetes node name, e.g. `demo-server-0`. */
  name: string;
  /** Prefix of the node's resource names (`<prefix>-cloud-init`, …), derived from the cluster's name. */
  resourceName: string;
  /** The machine's identity (instance id, or address for a host): a new machine gets a new verification. */
  id: pulumi.Input<string>;
  /** Address Pulumi reaches the node at over SSH (the public IP). */
  sshHost: pulumi.Input<string>;
  sshPort?: number;
  /** Login user when it differs from the cluster's. */
  sshUser?: string;
  /** `SHA256:…` host key known in advance; otherwise the first contact's key is pinned. */
  hostKey?: string;
  privateIp: pulumi.Input<string>;
}

export interface JoinArgs {
  clusterName: string;
  servers: NodeHandle[];
  /**
   * Creates the agent instances. Called once, with the resources they must wait for: the first server's
   * verification when `waitForToken` is on, nothing otherwise.
   */
  createAgents: (dependsOn: pulumi.Resource[]) => NodeHandle[];
  sshUser: pulumi.Input<string>;
  sshPrivateKey: pulumi.Input<string>;
  k3sVersion: string;
  k3sBinaryUrl?: string;
  k3sBinarySha256?: string;
  /** false: `token` (user-supplied, secret) is configured on every node and verification proves the server took it. */
  autoTokenSharing: boolean;
  token?: pulumi.Input<string>;
  /** false: agent instances and their preparation run alongside the servers; only their join waits for the token. */
  waitForToken: boolean;
  tokenTimeout: number;
  pollInterval: number;
  /** Public address kubectl uses (bare host or URL); added to every server's tls-san. */
  apiEndpoint: pulumi.Input<string>;
  modulesDir?: string;
  /** Seconds a removed node may take to drain before the removal stops, naming the pods; 0 skips the drain. */
  drainTimeout?: number;
  /** Which setting declares the servers, for the policy's messages: `servers` (EC2) or `hosts`. */
  serversKey?: string;
  /** `hosts` only: where each named machine is reached, so a name that moved to another machine is refused. */
  machines?: Record<string, string>;
  /** How many agents may be drained and re-applied (upgraded) at once; default 1. */
  maxUnavailableAgents?: number;
  /** `k3s-cluster:tokenRotation`: changing it rotates the join token (automatic token sharing only). */
  tokenRotation?: string;
}

export interface JoinOutputs {
  token: pulumi.Output<string>;
  agentToken: pulumi.Output<string>;
  kubeconfig: pulumi.Output<string>;
  verification: pulumi.Output<PublicVerificationReport>;
  verifications: ServerToken[];
  agents: NodeHandle[];
  /** Every node's membership, in the order servers then agents. */
  members: NodeMembership[];
  /** The whole-cluster check's verdict: every declared node, its role and status. */
  nodes: pulumi.Output<NodeStatus[]>;
}

export const DEFAULT_DRAIN_TIMEOUT = 120;

function hostOf(endpoint: string): string {
  const m = /^https:\/\/\[?([^\]/]+?)\]?(:\d+)?(\/.*)?$/.exec(endpoint);
  return m ? m[1] : endpoint;
}

export function joinCluster(parent: pulumi.Resource, args: JoinArgs): JoinOutputs {
  if (args.servers.length === 0) throw new Error("a cluster needs at least one server");
  if (!args.autoTokenSharing && args.token === undefined) {
    throw new Error("k3s-cluster:token is required when k3s-cluster:autoTokenSharing is false");
  }
  const userToken = args.autoTokenSharing ? undefined : pulumi.secret(args.token!);
  const ssh = (n: NodeHandle, hostKey?: pulumi.Input<string>): SshTarget => ({
    host: n.sshHost, port: n.sshPort, user: n.sshUser ?? args.sshUser, privateKey: args.sshPrivateKey, hostKey: hostKey ?? n.hostKey,
  });
  const first = args.servers[0];
  const serverUrl = pulumi.interpolate`https://${first.privateIp}:6443`;
  const common = {
    clusterName: args.clusterName, k3sVersion: args.k3sVersion, binarySource: args.k3sBinaryUrl,
    binarySha256: args.k3sBinarySha256, tokenTimeout: args.tokenTimeout,
  };

  // Refuses a downgrade, a skipped minor version or too many servers leaving at once, before any node is touched.
  const policy = new ClusterPolicy(`${args.clusterName}-policy`, {
    k3sVersion: args.k3sVersion,
    serversKey: args.serversKey ?? "servers",
    servers: args.servers.map((s) => s.name),
    ...(args.machines ? { machines: args.machines } : {}),
  }, { parent });
  const verifications: ServerToken[] = [];
  const serverBootstraps: NodeBootstrap[] = [];
  let firstHostKey: pulumi.Output<string> | undefined;
  for (const [i, server] of args.servers.entries()) {
    const previous = verifications[i - 1];
    const joining = i > 0;
    // Joining servers take the server token the first server's verification returned (or the user's).
    const token = userToken ?? (joining ? verifications[0].token : undefined);
    const manifest = pulumi.all([args.apiEndpoint, server.sshHost, serverUrl]).apply(([endpoint, publicIp, url]) =>
      renderManifest({
        ...common,
        nodeType: "server",
        clusterInit: !joining,
        startService: false,
        tokenFile: token === undefined ? undefined : DEFAULT_PATHS.tokenFile,
        serverUrl: joining ? url : undefined,
        nodeName: server.name,
        tlsSan: [...new Set([hostOf(endpoint), publicIp])],
      }));
    const bootstrap = new NodeBootstrap(server.resourceName, {
      ssh: ssh(server), manifest, token, modulesDir: args.modulesDir,
      // One etcd join at a time: parallel joins fail with "too many learner members".
      joinAfter: previous ? [previous] : [],
      prepareAfter: joining ? [serverBootstraps[0].prepared] : [],
      after: [policy],
      server: true,
    }, { parent });
    firstHostKey ??= bootstrap.hostKey;
    serverBootstraps.push(bootstrap);
    // The first server's token is rotated (when the label changes) before its verification runs again.
    const rotation = !joining && !userToken
      ? rotateToken(`${args.clusterName}-token`, {
        rotation: args.tokenRotation ?? "", server: ssh(server, bootstrap.hostKey), serverName: server.name,
        after: [bootstrap.applied],
      }, parent)
      : undefined;
    verifications.push(new ServerToken(`${server.resourceName}-token`, {
      serverId: server.id,
      host: server.sshHost,
      sshPort: server.sshPort,
      username: server.sshUser ?? args.sshUser,
      privateKey: args.sshPrivateKey,
      expectedHostKey: bootstrap.hostKey,
      nodeName: server.name,
      timeoutSeconds: args.tokenTimeout,
      intervalSeconds: args.pollInterval,
      expectedToken: token,
      // A re-applied manifest may have changed k3s's configuration, a rotation its token: verify again.
      revision: pulumi.interpolate`${bootstrap.revision}:${args.tokenRotation ?? ""}`,
      // After a rotation: the first server restarted by it, each other one by its rewritten token file.
    }, { parent, dependsOn: [bootstrap.applied, ...(rotation ? [rotation] : []), ...(bootstrap.tokenFile ? [bootstrap.tokenFile] : [])] }));
  }

  const gate = verifications[0];
  const agents = args.createAgents(args.waitForToken ? [gate] : []);
  const agentToken = userToken ?? gate.agentToken;
  const agentBootstraps: NodeBootstrap[] = [];
  const drainSeconds = args.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
  // An agent re-applies (an upgrade) only after every server runs the release, drained first and Ready again
  // after, a few agents at a time; the first server does the draining.
  const via = ssh(first, firstHostKey);
  // Long enough for the most servers a cluster can have to restart one after another; a bound that does not
  // depend on the server count, so adding servers does not touch every agent's recorded step.
  const waitSeconds = args.tokenTimeout * 7;
  for (const agent of agents) {
    const manifest = pulumi.output(serverUrl).apply((url) => renderManifest({
      ...common, nodeType: "agent", clusterInit: false, startService: false, tokenFile: DEFAULT_PATHS.tokenFile, serverUrl: url,
      nodeName: agent.name, tlsSan: [],
    }));
    agentBootstraps.push(new NodeBootstrap(agent.resourceName, {
      ssh: ssh(agent), manifest, token: agentToken, modulesDir: args.modulesDir,
      // Without waitForToken nothing holds the agent back: its join waits only for the token it needs
      // (the verification's output) or, with a user-supplied token, for nothing — k3s-agent retries.
      joinAfter: args.waitForToken ? [gate] : [],
      prepareAfter: [serverBootstraps[0].prepared],
      after: [policy],
      startWaitSeconds: args.tokenTimeout,
      rolling: {
        via, viaName: `${first.name} (rolling ${agent.name})`,
        before: beforeAgentUpdateScript(agent.name, args.k3sVersion, waitSeconds, drainSeconds),
        after: afterAgentUpdateScript(agent.name, args.k3sVersion, args.tokenTimeout),
        group: `${args.clusterName} agents`, limit: args.maxUnavailableAgents ?? 1,
        timeoutSeconds: waitSeconds + drainSeconds + 30,
      },
    }, { parent }));
  }

  // Each node's membership, kept by the first server: created once the node is a Ready member; deleted
  // (the node cordoned, drained and its Node deleted, so a server also leaves etcd) before the node's own
  // steps undo themselves. The first server's own membership is kept by itself, so it is removed only with it.
  const members: NodeMembership[] = [];
  for (const [i, server] of args.servers.entries()) {
    members.push(new NodeMembership(`${server.resourceName}-member`, {
      node: server.name, role: "server", via, viaName: first.name,
      timeoutSeconds: args.tokenTimeout, drainSeconds, revision: serverBootstraps[i].revision,
    }, {
      parent,
      // Servers leave one at a time (each removal waits for the next server's): etcd keeps its majority.
      dependsOn: [serverBootstraps[i].applied, verifications[i], gate, ...(i > 0 ? [members[i - 1]] : [])],
    }));
  }
  for (const [i, agent] of agents.entries()) {
    members.push(new NodeMembership(`${agent.resourceName}-member`, {
      node: agent.name, role: "agent", via, viaName: first.name,
      timeoutSeconds: args.tokenTimeout, drainSeconds, revision: agentBootstraps[i].revision,
    }, { parent, dependsOn: [agentBootstraps[i].applied, gate] }));
  }

  const nodes = checkCluster(`${args.clusterName}-cluster-check`, {
    via, viaName: first.name,
    expected: [...args.servers.map((n) => ({ name: n.name, role: "server" as const })), ...agents.map((n) => ({ name: n.name, role: "agent" as const }))],
    timeoutSeconds: args.tokenTimeout,
    revisions: [...serverBootstraps, ...agentBootstraps].map((b) => b.revision),
  }, { parent, dependsOn: members });

  const kubeconfig = fetchKubeconfig(`${args.clusterName}-kubeconfig`, {
    clusterName: args.clusterName,
    ssh: ssh(first, firstHostKey),
    apiEndpoint: args.apiEndpoint,
    trigger: gate.caHash,
  }, { parent, dependsOn: [gate] });

  return {
    token: pulumi.secret(gate.token),
    agentToken: pulumi.secret(gate.agentToken),
    kubeconfig,
    verification: gate.report,
    verifications,
    agents,
    members,
    nodes,
  };
}
