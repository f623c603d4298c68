// Does the outbox's jobs after commit: claims due jobs under a lease, runs each kind's
// handler with a timeout, and records the attempt; failures retry with exponential backoff
// and jitter until the attempts run out, then the job is DEAD (kept for support to see).
import type { Logger } from "pino";
import type { Config } from "../../config";
import type { Database } from "../database";
import { PeriodicTask } from "../periodic-task";
import type { ClaimedJob, OutboxStore } from "./outbox.store";

export type OutboxHandler = (job: ClaimedJob) => Promise<void>;

/** A failure that retrying cannot fix (no email address, unknown job kind). */
export class PermanentJobError extends Error {
  override readonly name = "PermanentJobError";
}

export interface OutboxCounters {
  succeeded: number;
  failed: number;
  dead: number;
}

export class OutboxWorker {
  readonly counters: OutboxCounters = { succeeded: 0, failed: 0, dead: 0 };
  private readonly handlers = new Map<string, OutboxHandler>();
  private readonly task: PeriodicTask;

  constructor(
    private readonly database: Database,
    private readonly store: OutboxStore,
    private readonly limits: Config["outbox"],
    private readonly logger: Logger,
    private readonly now: () => Date,
  ) {
    this.task = new PeriodicTask("outbox worker", limits.pollIntervalMs, async () => void (await this.runOnce()), logger);
  }

  register(kind: string, handler: OutboxHandler): void {
    this.handlers.set(kind, handler);
  }

  start(): void {
    this.task.start();
  }

  /** Stops claiming and waits for the jobs under way. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Claims and runs one batch; returns how many jobs it ran. */
  async runOnce(): Promise<number> {
    const { batchSize, leaseSeconds } = this.limits;
    const jobs = await this.store.claimDue(this.database, this.now(), batchSize, leaseSeconds);
    for (const job of jobs) await this.run(job);
    return jobs.length;
  }

  private async run(job: ClaimedJob): Promise<void> {
    const startedAt = this.now();
    const handler = this.handlers.get(job.kind);
    try {
      if (!handler) throw new PermanentJobError(`no handler for outbox jobs of kind ${job.kind}`);
      await withTimeout(handler(job), this.limits.sendTimeoutMs);
      await this.store.succeeded(this.database, job, startedAt, this.now());
      this.counters.succeeded += 1;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const retryAt = error instanceof PermanentJobError || job.attempt >= this.limits.maxAttempts ? undefined : this.retryAt(job.attempt);
      await this.store.failed(this.database, job, message, startedAt, this.now(), retryAt);
      this.counters.failed += 1;
      if (!retryAt) this.counters.dead += 1;
      this.logger.warn({ jobId: job.id, kind: job.kind, attempt: job.attempt, dead: !retryAt, error: message }, "outbox job failed");
    }
  }

  /** Exponential backoff with equal jitter: half the delay fixed, half random. */
  private retryAt(attempt: number): Date {
    const ceilingMs = Math.min(this.limits.backoffMaxMs, this.limits.backoffBaseMs * 2 ** (attempt - 1));
    const delayMs = ceilingMs / 2 + Math.random() * (ceilingMs / 2);
    return new Date(this.now().getTime() + delayMs);
  }
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
