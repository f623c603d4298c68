// Runs one customer's balance transactions one after another, across every server instance.
//
// Serializable isolation alone keeps concurrent writers correct, but a transaction that waits
// for another's row lock is aborted as soon as that one commits (its snapshot predates the
// commit), so on a busy customer one instance can starve another until its retries run out.
// Taking a PostgreSQL advisory lock on a separate session *before* the transaction begins
// makes waiters queue in the database and start their snapshot after the holder committed.
// An in-process queue in front means one instance holds at most one lock session per customer.
import pg from "pg";
import { ServiceUnavailableError } from "./failures";
import { KeyedMutex } from "./keyed-mutex";

export interface CustomerSerializerLimits {
  /** Sessions held for advisory locks: customers with work in flight at once on this instance. */
  lockSessions: number;
  /** How long to wait for a lock session, or for the lock itself. */
  lockTimeoutMs: number;
}

const lockNamespace = "splice:customer:";

export class CustomerSerializer {
  private readonly local = new KeyedMutex();
  private readonly sessions: pg.Pool;

  constructor(url: string, limits: CustomerSerializerLimits, onIdleSessionError: (error: Error) => void) {
    this.sessions = new pg.Pool({
      connectionString: url,
      max: limits.lockSessions,
      connectionTimeoutMillis: limits.lockTimeoutMs,
      options: `-c lock_timeout=${limits.lockTimeoutMs}`,
    });
    // An idle session dropped by the server (restart, failover) must not crash the process:
    // the pool discards it and opens another when next needed.
    this.sessions.on("error", onIdleSessionError);
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
    try {
      session = await this.sessions.connect();
      await session.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [key]).catch((error: unknown) => {
        session.release(error as Error);
        throw error;
      });
    } catch (error) {
      throw new ServiceUnavailableError("could not take the customer's lock in time", { cause: error });
    }
    try {
      return await work();
    } finally {
      // Ending the session releases the lock too; a failed unlock therefore discards it.
      await session.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key]).then(
        () => session.release(),
        (error: unknown) => session.release(error as Error),
      );
    }
  }
}
