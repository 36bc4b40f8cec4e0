// The stack's settings (namespace `k3s-cluster:`), validated once with zod before any resource exists.
// Values arrive from Pulumi config as strings; each problem becomes one message that names the full
// key, the value given (never a secret's) and the rule.
import { z } from "zod";
import { K3S_VERSION, K3S_VERSION_RULE } from "./k3s-version";

export const NAMESPACE = "k3s-cluster";
export const SECRET_KEYS = new Set(["sshPrivateKey", "token"]);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
const UNIX_USER = /^[a-z_][a-z0-9_-]*$/;
// An IPv4/IPv6 literal or a DNS name; no scheme, port or path.
const HOST_ADDRESS = /^([0-9.]+|[0-9a-fA-F:]+|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$/;
const HOST_KEY_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const SERVER_COUNTS = [1, 3, 5, 7];

function isCidr(value: string): boolean {
  const m = CIDR.exec(value);
  return !!m && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32;
}

const num = (v: unknown) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v);
const bool = (v: unknown) => (v === "true" ? true : v === "false" ? false : v);
const json = (v: unknown) => {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
};

const PORT = z.preprocess(num, z.number({ message: "must be a port number" }).int("must be a whole number").min(1, "must be a port number 1-65535").max(65535, "must be a port number 1-65535"));

/** One machine the stack is given instead of creating an EC2 instance (`k3s-cluster:hosts`). */
const hostSchema = z.object({
  name: z.string({ message: "is required" }).max(63, "must be at most 63 characters")
    .regex(DNS_LABEL, "must be a DNS-1123 label: it becomes the Kubernetes node name"),
  address: z.string({ message: "is required" }).regex(HOST_ADDRESS, "must be an IP address or host name this machine reaches over SSH"),
  privateAddress: z.string().regex(HOST_ADDRESS, "must be an IP address or host name the other nodes reach").optional(),
  role: z.enum(["server", "agent"], { message: "must be \"server\" or \"agent\"" }),
  sshUser: z.string().regex(UNIX_USER, "must be a Unix user name").optional(),
  sshPort: PORT.optional(),
  hostKey: z.string().regex(HOST_KEY_FINGERPRINT, "must be the SHA256:<43 base64 characters> fingerprint `ssh-keygen -lf` prints for the host key").optional(),
}, { message: "must be an object with name, address and role" }).strict();

export type HostSpec = z.infer<typeof hostSchema>;

/** Settings that only make sense when the program creates EC2 instances. */
export const EC2_ONLY_KEYS = ["servers", "agents", "serverInstanceType", "agentInstanceType", "ami", "sshPublicKey",
  "adminCidrs", "vpcId", "subnetIds", "tags", "retiredNodes"] as const;

const settings = z.object({
    clusterName: z
      .string({ message: "is required" })
      .max(63, "must be at most 63 characters")
      .regex(DNS_LABEL, "must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending alphanumeric)"),
    hosts: z.preprocess(json, z.array(hostSchema, { message: "must be a JSON list of {name, address, role, …} objects" })
      .min(1, "must list at least one server")).optional(),
    servers: z.preprocess(
      num,
      z
        .number({ message: "must be a number" })
        .refine((n) => SERVER_COUNTS.includes(n), "must be 1, 3, 5 or 7 (embedded etcd needs an odd count for a majority)"),
    ).optional(),
    agents: z.preprocess(num, z.number({ message: "must be a number" }).int("must be a whole number").min(0, "must be 0 or more")).optional(),
    serverInstanceType: z.string().regex(INSTANCE_TYPE, "must be an EC2 instance type like t3.medium").optional(),
    agentInstanceType: z.string().regex(INSTANCE_TYPE, "must be an EC2 instance type like t3.medium").optional(),
    ami: z.string().regex(/^ami-[0-9a-f]+$/, "must be an AMI id like ami-0123456789abcdef0").optional(),
    // EC2 nodes are numbered; a retired number is never used again, so `servers`/`agents` fill up from the
    // next free numbers: retiring a node replaces it (the new one joins before the old one leaves).
    retiredNodes: z.preprocess(json, z.array(z.string(), { message: "must be a JSON list of node names, e.g. [\"demo-agent-0\"]" })).optional(),
    sshUser: z.string().regex(UNIX_USER, "must be a Unix user name").optional(),
    sshPublicKey: z.string().regex(/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/, "must be an OpenSSH public key line").optional(),
    sshPrivateKey: z.string().includes("PRIVATE KEY", { message: "must be a PEM/OpenSSH private key" }).optional(),
    adminCidrs: z.preprocess(
      json,
      z
        .array(
          z
            .string()
            .refine(isCidr, "must be an IPv4 CIDR like 203.0.113.0/24")
            .refine((c) => c !== "0.0.0.0/0", "must not be 0.0.0.0/0: SSH and the API would be open to the internet"),
          { message: "must be a JSON list of CIDRs, e.g. [\"203.0.113.0/24\"]" },
        )
        .min(1, "must list at least one CIDR allowed to reach SSH and the API"),
    ).optional(),
    vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, "must be a VPC id like vpc-0123abcd").optional(),
    subnetIds: z.preprocess(json, z.array(z.string().regex(/^subnet-[0-9a-f]+$/, "must be subnet ids")).min(1)).optional(),
    // The same rule the Puppet module applies (components/k3s-version.ts): a pinned release, never a channel.
    k3sVersion: z.string().regex(K3S_VERSION, K3S_VERSION_RULE).default("v1.34.3+k3s1"),
    k3sBinaryUrl: z.string().regex(/^(https?:\/\/\S+|\/\S+)$/, "must be an http(s) URL or an absolute path").optional(),
    k3sBinarySha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex characters").optional(),
    autoTokenSharing: z.preprocess(bool, z.boolean({ message: "must be true or false" })).default(true),
    waitForToken: z.preprocess(bool, z.boolean({ message: "must be true or false" })).default(true),
    tokenTimeout: z.preprocess(num, z.number({ message: "must be a number" }).min(30, "must be between 30 and 600 seconds").max(600, "must be between 30 and 600 seconds")).default(300),
    pollInterval: z.preprocess(num, z.number({ message: "must be a number" }).min(0.5, "must be between 0.5 and 60 seconds").max(60, "must be between 0.5 and 60 seconds")).default(2),
    token: z.string().min(16, "must be at least 16 characters").optional(),
    tokenRotation: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, "must be a label of 1-64 letters, digits and . _ : - (change it to rotate the join token)").optional(),
    maxUnavailableAgents: z.preprocess(num, z.number({ message: "must be a number" }).int("must be a whole number").min(1, "must be 1 or more: how many agents may be drained and upgraded at once")).default(1),
    drainTimeout: z.preprocess(num, z.number({ message: "must be a number" }).int("must be a whole number of seconds").min(0, "must be between 0 (no drain) and 3600 seconds").max(3600, "must be between 0 (no drain) and 3600 seconds")).default(120),
    tags: z.preprocess(json, z.record(z.string(), z.string(), { message: "must be a JSON object of string tags" })).optional(),
  });

function checkHosts(hosts: HostSpec[], ctx: z.RefinementCtx): void {
  if (hosts.length === 0) return;
  const servers = hosts.filter((h) => h.role === "server").length;
  if (!SERVER_COUNTS.includes(servers)) {
    ctx.addIssue({ code: "custom", path: ["hosts"], message: `must hold 1, 3, 5 or 7 hosts with role "server" (embedded etcd needs an odd count for a majority); it holds ${servers}` });
  }
  const seen = new Map<string, number>();
  const once = (field: keyof HostSpec, what: string, value: string, i: number) => {
    const key = `${what}\0${value}`;
    const first = seen.get(key);
    if (first !== undefined) {
      ctx.addIssue({ code: "custom", path: ["hosts", i, field], message: `repeats hosts[${first}]'s ${what} ${value}: every host needs its own` });
    } else seen.set(key, i);
  };
  hosts.forEach((h, i) => {
    once("name", "name", h.name, i);
    once("address", "SSH address", `${h.address}:${h.sshPort ?? 22}`, i);
    once(h.privateAddress ? "privateAddress" : "address", "private address", h.privateAddress ?? h.address, i);
  });
}

export const configSchema = settings
  .superRefine((c, ctx) => {
    if (c.hosts) {
      for (const key of EC2_ONLY_KEYS) {
        if (c[key] !== undefined) {
          ctx.addIssue({ code: "custom", path: [key], message: `applies only to EC2 instances and cannot be combined with ${NAMESPACE}:hosts (the hosts list gives the machines, their roles and addresses)` });
        }
      }
      if (!c.sshPrivateKey) {
        ctx.addIssue({ code: "custom", path: ["sshPrivateKey"], message: `is required with ${NAMESPACE}:hosts: the key that logs in to those machines (pulumi config set --secret ${NAMESPACE}:sshPrivateKey < key)` });
      }
      checkHosts(c.hosts, ctx);
    } else {
      if (!c.adminCidrs) ctx.addIssue({ code: "custom", path: ["adminCidrs"], message: "is required" });
      // Both halves or neither: without them the program generates a key pair (kept secret in state).
      if (!!c.sshPublicKey !== !!c.sshPrivateKey) {
        ctx.addIssue({ code: "custom", path: [c.sshPublicKey ? "sshPrivateKey" : "sshPublicKey"], message: "must be given together with the other half of the key pair, or neither to generate one" });
      }
      // The default image is Ubuntu (user ubuntu); a custom image's login user cannot be guessed safely.
      if (c.ami && !c.sshUser) {
        ctx.addIssue({ code: "custom", path: ["sshUser"], message: "is required when ami is set (ubuntu for Ubuntu, admin for Debian, ec2-user for Amazon Linux)" });
      }
      const numbered = new RegExp(`^${c.clusterName}-(server|agent)-(0|[1-9][0-9]*)$`);
      (c.retiredNodes ?? []).forEach((n, i) => {
        if (!numbered.test(n)) {
          ctx.addIssue({ code: "custom", path: ["retiredNodes", i], message: `must name one of this cluster's EC2 nodes, ${c.clusterName}-server-<n> or ${c.clusterName}-agent-<n>` });
        } else if ((c.retiredNodes ?? []).indexOf(n) !== i) {
          ctx.addIssue({ code: "custom", path: ["retiredNodes", i], message: "is listed twice" });
        }
      });
      if (c.subnetIds && !c.vpcId) {
        ctx.addIssue({ code: "custom", path: ["vpcId"], message: "is required when subnetIds is given" });
      }
      if (c.vpcId && !c.subnetIds) {
        ctx.addIssue({ code: "custom", path: ["subnetIds"], message: "is required when vpcId is given" });
      }
    }
    if (!c.autoTokenSharing && !c.token) {
      ctx.addIssue({ code: "custom", path: ["token"], message: "is required when autoTokenSharing is false" });
    }
    if (!c.autoTokenSharing && c.tokenRotation) {
      ctx.addIssue({ code: "custom", path: ["tokenRotation"], message: "rotates tokens the cluster generated; with autoTokenSharing false the token is k3s-cluster:token: rotate it by running k3s token rotate and setting the new value there" });
    }
    if (c.autoTokenSharing && c.token) {
      ctx.addIssue({ code: "custom", path: ["token"], message: "is only used when autoTokenSharing is false" });
    }
    if (c.k3sBinaryUrl?.startsWith("http://") && !c.k3sBinarySha256) {
      ctx.addIssue({ code: "custom", path: ["k3sBinarySha256"], message: "is required with an http:// k3sBinaryUrl" });
    }
  })
  .transform((c) => {
    const hosts = c.hosts;
    return {
      ...c,
      servers: hosts ? hosts.filter((h) => h.role === "server").length : c.servers ?? 1,
      agents: hosts ? hosts.filter((h) => h.role === "agent").length : c.agents ?? 2,
      serverInstanceType: c.serverInstanceType ?? "t3.medium",
      agentInstanceType: c.agentInstanceType ?? "t3.medium",
      adminCidrs: c.adminCidrs ?? [],
      tags: c.tags ?? {},
      retiredNodes: c.retiredNodes ?? [],
    };
  });

export type ClusterConfig = z.output<typeof configSchema>;
export const KNOWN_KEYS = Object.keys(settings.shape);

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function nearestKey(key: string): string {
  return KNOWN_KEYS.reduce((best, k) => (distance(key.toLowerCase(), k.toLowerCase()) < distance(key.toLowerCase(), best.toLowerCase()) ? k : best));
}

export type ValidationResult = { ok: true; config: ClusterConfig } | { ok: false; messages: string[] };

/** Validates raw `k3s-cluster:*` config (keys with or without the namespace). */
export function validateConfig(raw: Record<string, string>): ValidationResult {
  const values: Record<string, string> = {};
  const messages: string[] = [];
  for (const [fullKey, value] of Object.entries(raw)) {
    const [ns, key] = fullKey.includes(":") ? fullKey.split(/:(.*)/s) : [NAMESPACE, fullKey];
    if (ns !== NAMESPACE) continue;
    if (!KNOWN_KEYS.includes(key)) {
      messages.push(`${NAMESPACE}:${key} is not a setting of this program; did you mean ${NAMESPACE}:${nearestKey(key)}?`);
      continue;
    }
    values[key] = value;
  }
  const parsed = configSchema.safeParse(values);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? "");
      const rest = issue.path.slice(1);
      // A problem inside a list (hosts) names the element and field, and shows that field's value.
      const where = rest.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
      let given: unknown = values[key];
      if (rest.length > 0) {
        given = rest.reduce<unknown>((v, p) => (v && typeof v === "object" ? (v as Record<string, unknown>)[p as string] : undefined), json(given));
      }
      // A rule about the whole hosts list would end with the whole JSON: its message says what counts.
      if (key === "hosts" && rest.length === 0 && Array.isArray(json(given))) {
        messages.push(`${NAMESPACE}:${key} ${issue.message}`);
        continue;
      }
      const shown = given === undefined ? "not set" : SECRET_KEYS.has(key) ? "(secret value hidden)" : JSON.stringify(given);
      messages.push(`${NAMESPACE}:${key}${where} ${issue.message} (got ${shown})`);
    }
  }
  if (messages.length > 0) return { ok: false, messages };
  return { ok: true, config: (parsed as { data: ClusterConfig }).data };
}

export class ConfigError extends Error {
  constructor(readonly messages: string[]) {
    super(`invalid stack configuration:\n  - ${messages.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

/** Reads and validates the stack's config; throws one ConfigError listing every problem. */
export function loadConfig(raw: Record<string, string>): ClusterConfig {
  const result = validateConfig(raw);
  if (!result.ok) throw new ConfigError(result.messages);
  return result.config;
}
