// Lines a node-side step prints, shown by `pulumi up` under the resource that runs it, as
// @pulumi/command does: the engine's Log service, addressed by the resource's URN. The engine starts the
// dynamic-provider host with its own address as the first argument; outside that host (tests that call
// the provider directly) lines go to stderr.
import * as grpc from "@grpc/grpc-js";
import * as engineRpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engineProto from "@pulumi/pulumi/proto/engine_pb";

export type Say = (line: string, opts?: { error?: boolean; ephemeral?: boolean }) => void;

export interface EngineLogger {
  say: Say;
  /** Waits until every line was delivered (or failed), so nothing is lost when the step ends. */
  flush(): Promise<void>;
}

/** The engine's address: the host's first argument that is not a flag (the engine may pass `-v=…` etc. first). */
function engineAddress(): string | undefined {
  if (!/dynamic-provider/.test(process.argv[1] ?? "")) return undefined;
  return process.argv.slice(2).find((a) => /^[^-][\w.\-\[\]:]*:\d+$/.test(a));
}

export function engineLogger(urn: string): EngineLogger {
  const addr = engineAddress();
  if (!addr || !urn) {
    return {
      say: (line) => process.stderr.write(`${line}\n`),
      flush: async () => undefined,
    };
  }
  const client = new engineRpc.EngineClient(addr, grpc.credentials.createInsecure());
  // One stream id per step keeps its lines together in the engine's display.
  const streamId = Math.floor(Math.random() * 0x7fffffff);
  let pending: Promise<void> = Promise.resolve();
  const say: Say = (line, opts = {}) => {
    const req = new engineProto.LogRequest();
    req.setSeverity(opts.error ? engineProto.LogSeverity.WARNING : engineProto.LogSeverity.INFO);
    // The engine joins the messages of one stream into its diagnostics as they come: each is a whole line.
    req.setMessage(`${line}\n`);
    req.setUrn(urn);
    req.setStreamid(streamId);
    req.setEphemeral(!!opts.ephemeral);
    // In order: each send waits for the previous one.
    pending = pending.then(() => new Promise<void>((resolve) => client.log(req, () => resolve())));
  };
  return {
    say,
    flush: async () => {
      await pending;
      client.close();
    },
  };
}
