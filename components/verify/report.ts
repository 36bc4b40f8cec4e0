// The shapes a verification returns and is configured with.
export interface VerifyOptions {
  host: string; sshPort?: number; username: string; privateKey: string;
  expectedHostKey?: string; apiPort?: number; dataDir?: string;
  nodeName?: string; timeoutSeconds: number;
  /** Accepted for configuration compatibility; nothing waits on it: the server reports changes as they happen. */
  intervalSeconds: number;
  expectedToken?: string;
  onProgress?: (line: string) => void;
}
export interface StepResult { step: number; name: string; ok: boolean; attempts: number; ms: number; detail: string; }
export interface VerificationReport {
  ok: boolean; failedStep?: number; serverUrl: string; caHash: string; hostKeyFingerprint: string;
  steps: StepResult[]; token?: string; agentToken?: string; sshConnections: number;
}

export const STEP_NAMES = [
  "SSH connectivity", "k3s service active", "Node Ready", "Token available",
  "Token format", "Authentication", "API server accessible",
];
