// The PostgreSQL driver adapter for Prisma, hardened against connection leaks and dead
// connections.
//
// Prisma 6.19's client engine ends a transaction by running COMMIT or ROLLBACK through the
// adapter and only then calling the adapter's commit() or rollback(), which is what returns the
// connection to the pool. When that statement itself fails (at Serializable a conflict is often
// reported at COMMIT; a connection killed mid-transaction fails its ROLLBACK), the engine never
// calls them: the connection leaks, and after pool-size leaks every query waits. Here a failed
// COMMIT or ROLLBACK gives the connection back at once: to the pool when PostgreSQL refused the
// statement (a serialization failure ends the transaction and leaves the session sound),
// destroyed when the connection itself failed. Each transaction gives it back exactly once.
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";

interface AdapterQuery {
  sql: string;
}

/** The parts of the adapter's transaction (PgTransaction in @prisma/adapter-pg 7.10) used here. */
interface AdapterTransaction {
  client: pg.PoolClient;
  cleanup?: () => void;
  executeRaw(query: AdapterQuery): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

interface TransactionalAdapter {
  startTransaction(isolationLevel?: string): Promise<AdapterTransaction>;
}

export interface PoolSettings {
  url: string;
  size: number;
  /** Waiting for a pooled connection, or for a new one to open, fails after this. */
  acquireTimeoutMs: number;
  /** Server settings for every session (planner choices that keep predicate locks narrow). */
  sessionOptions?: string;
  onIdleConnectionError: (error: Error) => void;
}

const endingStatements = new Set(["COMMIT", "ROLLBACK"]);
const sqlStatePattern = /^[0-9A-Z]{5}$/;

/** The SQLSTATE PostgreSQL answered with, as the adapter reports it; none for a lost connection. */
function sqlStateOf(error: unknown): string | undefined {
  const candidates = [error, (error as { cause?: unknown } | null)?.cause];
  for (const candidate of candidates) {
    const code = (candidate as { originalCode?: unknown; code?: unknown } | null)?.originalCode ?? (candidate as { code?: unknown } | null)?.code;
    if (typeof code === "string" && sqlStatePattern.test(code)) return code;
  }
  return undefined;
}

/** Whether a session that failed a statement can be reused: PostgreSQL answered, and not to say it is going away. */
function sessionSurvived(error: unknown): boolean {
  const sqlState = sqlStateOf(error);
  return sqlState !== undefined && !sqlState.startsWith("08") && !sqlState.startsWith("57P");
}

function releaseExactlyOnce(transaction: AdapterTransaction): AdapterTransaction {
  let released = false;
  const release = (error?: Error) => {
    if (released) return;
    released = true;
    transaction.cleanup?.();
    // With an error, pg's pool destroys the connection instead of reusing it.
    transaction.client.release(error);
  };
  const executeRaw = transaction.executeRaw.bind(transaction);
  transaction.commit = async () => release();
  transaction.rollback = async () => release();
  transaction.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (endingStatements.has(query.sql.trim().toUpperCase())) {
        release(sessionSurvived(error) ? undefined : error instanceof Error ? error : new Error(String(error)));
      }
      throw error;
    }
  };
  return transaction;
}

const keepAliveInitialDelayMs = 10_000;

export function createPool(settings: PoolSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.size,
    connectionTimeoutMillis: settings.acquireTimeoutMs,
    // A peer that vanished without closing is probed after 10 s idle instead of the OS's 2 hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: keepAliveInitialDelayMs,
    options: settings.sessionOptions,
  });
  // An idle connection dropped by the server must not crash the process; the pool discards it
  // and opens another when next needed.
  pool.on("error", settings.onIdleConnectionError);
  return pool;
}

export function createPgAdapter(settings: PoolSettings): { adapter: PrismaPg; pool: pg.Pool } {
  const pool = createPool(settings);
  const factory = new PrismaPg(pool, { onConnectionError: settings.onIdleConnectionError });
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const transactional = adapter as unknown as TransactionalAdapter;
    const startTransaction = transactional.startTransaction.bind(transactional);
    transactional.startTransaction = async (isolationLevel) => releaseExactlyOnce(await startTransaction(isolationLevel));
    return adapter;
  };
  return { adapter: factory, pool };
}
