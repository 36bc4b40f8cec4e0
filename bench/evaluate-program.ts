// Evaluates the program under plain Pulumi mocks (nothing carried out) for one topology and prints
// {servers, agents, resources, ms, peakRssMb} as JSON: the cost of `pulumi preview`'s program side.
//   tsx bench/evaluate-program.ts <servers> <agents>
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import * as settings from "@pulumi/pulumi/runtime/settings";

// Present at run time but left out of the SDK's type declarations.
const waitForRPCs = (settings as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs;
import { K3S_YAML } from "../tests/helpers/k3s-yaml";

const [servers, agents] = process.argv.slice(2).map(Number);
let resources = 0;

pulumi.runtime.setAllConfig(
  {
    "k3s-cluster:clusterName": "bench",
    "k3s-cluster:servers": String(servers),
    "k3s-cluster:agents": String(agents),
    "k3s-cluster:adminCidrs": JSON.stringify(["203.0.113.0/24"]),
    "k3s-cluster:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchmarkKeyOnlyForEvaluationXXXXXXXXXXXXX bench",
    "k3s-cluster:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nbench\n-----END OPENSSH PRIVATE KEY-----\n",
  },
  ["k3s-cluster:sshPrivateKey"],
);
pulumi.runtime.setMocks(
  {
    newResource(args) {
      resources++;
      const state: Record<string, unknown> = { ...args.inputs };
      if (args.type === "aws:ec2/instance:Instance") {
        state.privateIp = `10.0.${Math.floor(resources / 250)}.${resources % 250}`;
        state.publicIp = `203.0.113.${resources % 250}`;
      }
      if (args.type === "pulumi-nodejs:dynamic/k3s:RemoteCommand") {
        state.stdout = args.name.endsWith("kubeconfig") ? K3S_YAML
          : args.name.endsWith("cluster-check") ? JSON.stringify({ ok: true, nodes: [] }) : "Notice: Applied catalog";
      }
      if (args.type.startsWith("pulumi-nodejs:dynamic")) {
        state.token = `K10${"a".repeat(64)}::server:${"b".repeat(32)}`;
        state.agentToken = `K10${"a".repeat(64)}::node:${"c".repeat(32)}`;
      }
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      if (args.token === "aws:ec2/getAmi:getAmi") return { id: "ami-bench", architecture: "x86_64" };
      if (args.token === "aws:index/getAvailabilityZones:getAvailabilityZones") return { names: ["a", "b", "c"] };
      return {};
    },
  },
  "k3s-cluster",
  "bench",
  false,
);

const t0 = process.hrtime.bigint();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const program = require(path.resolve(__dirname, "../index.ts")) as Record<string, unknown>;
// Done when every registration the program started has been answered, as `pulumi preview` would wait.
Promise.all(
  Object.values(program)
    .filter((v) => pulumi.Output.isInstance(v))
    .map((v) => new Promise((resolve) => (v as pulumi.Output<unknown>).apply(resolve))),
)
  .then(() => waitForRPCs())
  .then(() => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(
      JSON.stringify({ servers, agents, resources, ms: Math.round(ms), peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }) + "\n",
    );
    process.exit(0);
  });
