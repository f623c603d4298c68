// WEB_CONCURRENCY > 1: the primary process owns the database (the embedded PostgreSQL, the
// migrations) and runs that many workers with node:cluster, each a whole server sharing the
// port. Everything a worker does across customers is already safe with several instances
// (advisory locks, Serializable transactions, the sweeper and the outbox), so workers are
// instances that happen to share a machine. A worker that dies is replaced, within a limit;
// stopping sends each SIGTERM and waits for its orderly stop, then the primary stops PostgreSQL.
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";

/** Set by the primary for its workers: the prepared database, used as it is (no migrations). */
export const workerDatabaseUrlVariable = "SPLICE_CLUSTER_DATABASE_URL";

export interface WorkerSetLimits {
  workers: number;
  /** A worker that has not said it listens by then has failed to start. */
  startTimeoutMs: number;
  /** Replacements of dead workers allowed per minute; beyond, the whole server stops. */
  replacementsPerMinute: number;
  /** How long an orderly stop of the workers may take before they are killed. */
  stopTimeoutMs: number;
}

const minuteMs = 60_000;

export class WorkerSet {
  private stopping = false;
  private readonly replacedAtMs: number[] = [];

  constructor(
    private readonly limits: WorkerSetLimits,
    private readonly databaseUrl: string,
    private readonly logger: Logger,
    /** Called when workers keep dying: the server cannot serve, and stops. */
    private readonly onGivingUp: (reason: string) => void,
  ) {}

  /** Starts every worker; resolves when all listen, rejects when one fails to start. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.limits.workers }, () => this.fork()));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const running = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && !worker.isDead());
    await Promise.all(running.map((worker) => this.stopWorker(worker)));
  }

  private fork(): Promise<Worker> {
    const worker = cluster.fork({ [workerDatabaseUrlVariable]: this.databaseUrl });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.process.kill("SIGKILL");
        reject(new Error(`worker ${worker.process.pid} did not listen within ${this.limits.startTimeoutMs} ms`));
      }, this.limits.startTimeoutMs);
      const failedToStart = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(new Error(`worker ${worker.process.pid} exited while starting (${signal ?? `code ${code}`})`));
      };
      worker.once("exit", failedToStart);
      worker.once("listening", () => {
        clearTimeout(timer);
        worker.off("exit", failedToStart);
        worker.once("exit", (code, signal) => this.onExit(worker, code, signal));
        resolve(worker);
      });
    });
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    if (this.stopping) return;
    const nowMs = Date.now();
    this.replacedAtMs.push(nowMs);
    while (this.replacedAtMs.length > 0 && this.replacedAtMs[0]! < nowMs - minuteMs) this.replacedAtMs.shift();
    if (this.replacedAtMs.length > this.limits.replacementsPerMinute) {
      this.onGivingUp(`${this.replacedAtMs.length} workers died within a minute`);
      return;
    }
    this.logger.error({ pid: worker.process.pid, code, signal }, "a worker died; starting another");
    this.fork().catch((error: unknown) => this.onGivingUp(`a replacement worker failed to start: ${(error as Error).message}`));
  }

  private stopWorker(worker: Worker): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.logger.error({ pid: worker.process.pid }, "a worker did not stop in time; killing it");
        worker.process.kill("SIGKILL");
      }, this.limits.stopTimeoutMs);
      worker.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      worker.process.kill("SIGTERM");
    });
  }
}
