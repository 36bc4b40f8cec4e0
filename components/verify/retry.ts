// A step keeps trying until the one overall deadline, unless its failure is final (waiting cannot help).
export class StepFailure extends Error {
  readonly final: boolean;
  constructor(message: string, final: boolean) {
    super(message);
    this.final = final;
    // Set again: a closure-serialized subclass may call Error as a plain function, which drops it.
    this.message = message;
    this.name = "StepFailure";
  }
}

export interface Attempted<T> { ok: boolean; value?: T; attempts: number; ms: number; detail: string; }

export async function retryUntil<T>(
  deadline: number, intervalMs: number, attempt: () => Promise<T>,
): Promise<Attempted<T>> {
  const started = Date.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const value = await attempt();
      return { ok: true, value, attempts, ms: Date.now() - started, detail: "" };
    } catch (err) {
      // Duck-typed: after closure serialization, Error subclasses need not pass instanceof Error.
      const m = (err as { message?: unknown } | null)?.message;
      const msg = typeof m === "string" ? m : String(err);
      const final = err instanceof StepFailure && err.final;
      const left = deadline - Date.now();
      if (final) return { ok: false, attempts, ms: Date.now() - started, detail: msg };
      if (left <= 0) return { ok: false, attempts, ms: Date.now() - started, detail: `timed out after ${Math.round((Date.now() - started) / 1000)} s: ${msg}` };
      await new Promise((r) => setTimeout(r, Math.min(intervalMs, left)));
    }
  }
}
