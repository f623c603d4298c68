// Runs one customer's balance transactions one after another, across every server instance.
//
// Serializable isolation alone keeps concurrent writers correct, but a transaction that waits
// for another's row lock is aborted as soon as that one commits (its snapshot predates the
// commit), so on a busy customer one instance can starve another until its retries run out.
// Taking a PostgreSQL advisory lock on a separate session *before* the transaction begins
// makes waiters queue in the database and start their snapshot after the holder committed.
// An in-process queue in front means one instance holds at most one lock session per customer.
import type pg from "pg";
import { ServiceUnavailableError } from "./failures";
import { KeyedMutex } from "./keyed-mutex";
import { createPool } from "./pg-adapter";

export interface CustomerSerializerLimits {
  /** Sessions held for advisory locks: customers with work in flight at once on this instance. */
  lockSessions: number;
  /** How long to wait for a lock session, or for the lock itself. */
  lockTimeoutMs: number;
}

const lockNamespace = "splice:customer:";

export class CustomerSerializer {
  private lostSessionCount = 0;
  private readonly local = new KeyedMutex();
  private readonly sessions: pg.Pool;

  constructor(
    url: string,
    limits: CustomerSerializerLimits,
    private readonly onSessionError: (error: Error) => void,
  ) {
    this.sessions = createPool({
      url,
      size: limits.lockSessions,
      acquireTimeoutMs: limits.lockTimeoutMs,
      sessionOptions: `-c lock_timeout=${limits.lockTimeoutMs}`,
      onIdleConnectionError: (error) => {
        this.lostSessionCount += 1;
        onSessionError(error);
      },
    });
  }

  /** Lock sessions the server dropped, idle or held, for metrics. */
  get lostSessions(): number {
    return this.lostSessionCount;
  }

  /** Sessions open, idle, and callers waiting for one, for metrics. */
  get sessionCounts(): { total: number; idle: number; waiting: number } {
    return { total: this.sessions.totalCount, idle: this.sessions.idleCount, waiting: this.sessions.waitingCount };
  }

  run<T>(customerId: string, work: () => Promise<T>): Promise<T> {
    return this.local.run(customerId, () => this.withAdvisoryLock(customerId, work));
  }

  async close(): Promise<void> {
    await this.sessions.end();
  }

  private async withAdvisoryLock<T>(customerId: string, work: () => Promise<T>): Promise<T> {
    const key = lockNamespace + customerId;
    let session: pg.PoolClient;
    // A held session is no longer watched by the pool: a server restart or a killed backend
    // would emit 'error' on it with no listener and end the process. The lock went with the
    // session; the work's own Serializable transaction still keeps it correct.
    let lost: Error | undefined;
    const onLost = (error: Error) => {
      // pg may report one lost connection twice (the server's message, then the socket's end).
      if (lost) return;
      lost = error;
      this.lostSessionCount += 1;
      this.onSessionError(error);
    };
    try {
      session = await this.sessions.connect();
    } catch (error) {
      throw new ServiceUnavailableError("could not open a session for the customer's lock", { cause: error });
    }
    session.on("error", onLost);
    const release = (error?: Error) => {
      session.removeListener("error", onLost);
      session.release(error ?? lost);
    };
    try {
      await session.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [key]);
    } catch (error) {
      release(error as Error);
      throw new ServiceUnavailableError("could not take the customer's lock in time", { cause: error });
    }
    try {
      return await work();
    } finally {
      // Ending the session releases the lock too; a failed unlock therefore discards it.
      if (lost) release();
      else {
        await session.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key]).then(
          () => release(),
          (error: unknown) => release(error as Error),
        );
      }
    }
  }
}
