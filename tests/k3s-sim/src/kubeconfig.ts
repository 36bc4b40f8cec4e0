import * as fs from "node:fs";
import * as path from "node:path";
import { hostPath } from "./paths";
import { log } from "./log";
import type { ServerState } from "./state";

export const KUBECONFIG = "/etc/rancher/k3s/k3s.yaml";

const b64 = (file: string): string => fs.readFileSync(file).toString("base64");

export function writeKubeconfig(st: ServerState): void {
  const host = st.cfg.bindAddress && st.cfg.bindAddress !== "0.0.0.0" ? st.cfg.bindAddress : "127.0.0.1";
  const text = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${b64(st.tls.serverCaCrt)}
    server: https://${host}:${st.cfg.httpsListenPort}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: ${b64(st.tls.adminCrt)}
    client-key-data: ${b64(st.tls.adminKey)}
`;
  const file = hostPath(KUBECONFIG);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const mode = st.cfg.writeKubeconfigMode ?? 0o600;
  fs.writeFileSync(file, text, { mode });
  fs.chmodSync(file, mode);
  log("info", `Wrote kubeconfig ${KUBECONFIG}`);
}

export interface KubeAccess { server: string; ca: Buffer; cert: Buffer; key: Buffer; }

export function readKubeconfig(file: string): KubeAccess {
  const text = fs.readFileSync(file, "utf8");
  const field = (name: string): string => {
    const m = new RegExp(`^\\s*${name}:\\s*(\\S+)\\s*$`, "m").exec(text);
    if (!m) throw new Error(`${file}: no ${name}`);
    return m[1];
  };
  return {
    server: field("server"),
    ca: Buffer.from(field("certificate-authority-data"), "base64"),
    cert: Buffer.from(field("client-certificate-data"), "base64"),
    key: Buffer.from(field("client-key-data"), "base64"),
  };
}
