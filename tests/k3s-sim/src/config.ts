import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hostPath } from "./paths";
import { parseFlatYaml, YamlValue } from "./yaml";

export type Role = "server" | "agent";

export interface SimConfig {
  role: Role;
  token?: string;
  agentToken?: string;
  server?: string;
  clusterInit: boolean;
  tlsSan: string[];
  nodeName: string;
  dataDir: string;
  writeKubeconfigMode?: number;
  bindAddress?: string;
  httpsListenPort: number;
  nodeIp: string[];
  nodeLabel: string[];
}

const BOOL_FLAGS = new Set(["cluster-init", "debug", "disable-agent", "protect-kernel-defaults", "selinux", "secrets-encryption"]);
const LIST_KEYS = new Set(["tls-san", "node-ip", "node-label", "node-taint", "disable", "kubelet-arg", "kube-apiserver-arg"]);
const ENV_KEYS: Record<string, string> = {
  K3S_TOKEN: "token", K3S_TOKEN_FILE: "token-file", K3S_URL: "server", K3S_AGENT_TOKEN: "agent-token",
  K3S_AGENT_TOKEN_FILE: "agent-token-file", K3S_NODE_NAME: "node-name", K3S_KUBECONFIG_MODE: "write-kubeconfig-mode",
  K3S_CLUSTER_INIT: "cluster-init", K3S_DATA_DIR: "data-dir",
};

type Values = Map<string, YamlValue>;

function parseFlags(argv: string[]): { values: Values; configFile?: string } {
  const values: Values = new Map();
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("-")) continue;
    const eq = arg.indexOf("=");
    let key = (eq >= 0 ? arg.slice(0, eq) : arg).replace(/^--?/, "");
    let value: string | boolean;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (BOOL_FLAGS.has(key) || i + 1 >= argv.length || argv[i + 1].startsWith("-")) value = true;
    else value = argv[++i];
    if (key === "t") key = "token";
    if (key === "s") key = "server";
    if (key === "config" || key === "c") { configFile = String(value); continue; }
    if (LIST_KEYS.has(key)) {
      const prev = values.get(key);
      values.set(key, [...(Array.isArray(prev) ? prev : []), ...String(value).split(",")]);
    } else values.set(key, value);
  }
  return { values, configFile };
}

function readConfigFiles(file: string): Values {
  const values: Values = new Map();
  const files: string[] = [];
  if (fs.existsSync(file)) files.push(file);
  const dropIn = `${file}.d`;
  if (fs.existsSync(dropIn)) {
    for (const f of fs.readdirSync(dropIn).sort()) if (/\.ya?ml$/.test(f)) files.push(path.join(dropIn, f));
  }
  for (const f of files) {
    for (const [rawKey, v] of Object.entries(parseFlatYaml(fs.readFileSync(f, "utf8"), f))) {
      // "key+:" appends to a list set by an earlier file, as k3s's drop-ins do.
      const append = rawKey.endsWith("+");
      const key = append ? rawKey.slice(0, -1) : rawKey;
      const prev = values.get(key);
      if (append && Array.isArray(prev)) values.set(key, [...prev, ...(Array.isArray(v) ? v : [String(v)])]);
      else values.set(key, LIST_KEYS.has(key) && !Array.isArray(v) ? [String(v)] : v);
    }
  }
  return values;
}

function readSecretFile(file: string, setting: string): string {
  try {
    return fs.readFileSync(hostPath(file), "utf8").trim();
  } catch (e) {
    throw new Error(`${setting}=${file}: cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

// Precedence as in k3s: command-line flags, then config file values (k3s injects them as flags), then K3S_* env.
export function loadConfig(role: Role, argv: string[]): SimConfig {
  const flags = parseFlags(argv);
  const cfgPath = flags.configFile ?? "/etc/rancher/k3s/config.yaml";
  const file = readConfigFiles(hostPath(cfgPath));
  const env: Values = new Map();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const v = process.env[name];
    if (v !== undefined && v !== "") env.set(key, key === "cluster-init" ? v === "true" : v);
  }
  const get = (key: string): YamlValue | undefined => flags.values.get(key) ?? file.get(key) ?? env.get(key);
  const str = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined || v === false) return undefined;
    if (Array.isArray(v)) throw new Error(`${key}: expected a single value, got a list`);
    return String(v);
  };
  const list = (key: string): string[] => {
    const v = [...asList(file.get(key)), ...asList(flags.values.get(key))];
    return v.flatMap((x) => x.split(",")).map((x) => x.trim()).filter((x) => x !== "");
  };

  let token = str("token");
  const tokenFile = str("token-file");
  if (tokenFile) token = readSecretFile(tokenFile, "token-file");
  let agentToken = role === "server" ? str("agent-token") : undefined;
  const agentTokenFile = role === "server" ? str("agent-token-file") : undefined;
  if (agentTokenFile) agentToken = readSecretFile(agentTokenFile, "agent-token-file");

  const modeRaw = str("write-kubeconfig-mode");
  let writeKubeconfigMode: number | undefined;
  if (modeRaw !== undefined) {
    if (!/^[0-7]{3,4}$/.test(modeRaw)) throw new Error(`write-kubeconfig-mode=${modeRaw}: must be an octal file mode like 0644`);
    writeKubeconfigMode = parseInt(modeRaw, 8);
  }
  const portRaw = str("https-listen-port") ?? "6443";
  const httpsListenPort = Number(portRaw);
  if (!Number.isInteger(httpsListenPort) || httpsListenPort < 1 || httpsListenPort > 65535) {
    throw new Error(`https-listen-port=${portRaw}: must be a TCP port 1-65535`);
  }
  const server = str("server");
  if (server !== undefined && !/^https:\/\/[^/\s]+$/.test(server.replace(/\/$/, ""))) {
    throw new Error(`server=${server}: must be an https:// URL like https://10.0.1.10:6443`);
  }
  const ci = get("cluster-init");
  return {
    role,
    token,
    agentToken,
    server: server?.replace(/\/$/, ""),
    clusterInit: ci === true || ci === "true",
    tlsSan: list("tls-san"),
    nodeName: str("node-name") ?? os.hostname(),
    dataDir: str("data-dir") ?? "/var/lib/rancher/k3s",
    writeKubeconfigMode,
    bindAddress: str("bind-address"),
    httpsListenPort,
    nodeIp: list("node-ip"),
    nodeLabel: list("node-label"),
  };
}

function asList(v: YamlValue | undefined): string[] {
  if (v === undefined || typeof v === "boolean") return [];
  return Array.isArray(v) ? v : [v];
}
