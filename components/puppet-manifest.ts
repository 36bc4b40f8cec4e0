// The manifest each node applies: one declaration of the k3s_cluster class with the node's role and the
// stack's settings. It holds no secret — the join token is in the root-only file `token_file` names.

export interface K3sClusterClassParams {
  nodeType: "server" | "agent";
  clusterInit: boolean;
  clusterName: string;
  /** Absent on the first server when k3s generates the token itself. */
  tokenFile?: string;
  /** Joining servers and agents. */
  serverUrl?: string;
  k3sVersion: string;
  /** The k3s binary from a URL or an absolute path instead of the install script (air-gapped hosts). */
  binarySource?: string;
  binarySha256?: string;
  nodeName: string;
  tlsSan: string[];
  /** Seconds Puppet waits for the k3s unit to turn active (an agent: to join). */
  tokenTimeout: number;
  /**
   * false: Puppet installs and configures k3s but leaves the unit to whoever applies the manifest. The
   * program does that so a node is prepared before its join token exists; it then writes the token and
   * starts the unit itself (NodeBootstrap's start step).
   */
  startService: boolean;
}

/** Puppet single-quoted string: only `\` and `'` need escaping. */
function puppetString(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

export function renderManifest(p: K3sClusterClassParams): string {
  const attrs: [string, string][] = [
    ["node_type", puppetString(p.nodeType)],
    ["cluster_init", String(p.clusterInit)],
    ["cluster_name", puppetString(p.clusterName)],
    // Pulumi carries the verified token itself; PuppetDB sharing is for Puppet-only estates.
    ["auto_token_sharing", "false"],
  ];
  if (p.tokenFile) attrs.push(["token_file", puppetString(p.tokenFile)]);
  if (p.serverUrl) attrs.push(["server_url", puppetString(p.serverUrl)]);
  attrs.push(["k3s_version", puppetString(p.k3sVersion)]);
  if (p.binarySource) {
    attrs.push(["install_method", puppetString("binary")], ["binary_source", puppetString(p.binarySource)]);
    if (p.binarySha256) attrs.push(["binary_sha256", puppetString(p.binarySha256)]);
  } else {
    attrs.push(["install_method", puppetString("script")]);
  }
  attrs.push(["token_timeout", String(p.tokenTimeout)]);
  if (!p.startService) attrs.push(["start_service", "false"]);
  attrs.push(["node_name", puppetString(p.nodeName)]);
  attrs.push(["tls_san", `[${p.tlsSan.map(puppetString).join(", ")}]`]);
  const width = Math.max(...attrs.map(([k]) => k.length));
  const body = attrs.map(([k, v]) => `  ${k.padEnd(width)} => ${v},`).join("\n");
  return `# Written by the k3s-cluster Pulumi program; applied with puppet apply --detailed-exitcodes.\nclass { 'k3s_cluster':\n${body}\n}\n`;
}
