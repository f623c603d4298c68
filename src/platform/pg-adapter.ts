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
//
// The adapter opens a transaction with two statements, BEGIN then SET TRANSACTION ISOLATION
// LEVEL: two round trips on every money transaction. Here it is one, BEGIN ISOLATION LEVEL.
// The transaction being opened is also handed to whoever asked for it in the same async
// context (`openingTransactions`), so that its statements can run on its connection directly
// (direct-sql.ts).
import { AsyncLocalStorage } from "node:async_hooks";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { transactionRunner, type SqlRunner } from "./direct-sql";

interface AdapterQuery {
  sql: string;
}

/** The parts of the adapter's transaction (PgTransaction in @prisma/adapter-pg 7.10) used here. */
interface AdapterTransaction {
  client: pg.PoolClient;
  cleanup?: () => void;
  executeRaw(query: AdapterQuery & { args: unknown[]; argTypes: unknown[] }): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** The parts of the adapter (PrismaPgAdapter, a PgQueryable on the pool) used here. */
interface TransactionalAdapter {
  startTransaction(isolationLevel?: string): Promise<AdapterTransaction>;
  /** Throws the driver's error as the adapter reports it to Prisma. */
  onError(error: unknown): never;
}

/** Filled in by the adapter when it opens a transaction in this async context. */
export interface OpeningTransaction {
  runner?: SqlRunner;
}

export const openingTransactions = new AsyncLocalStorage<OpeningTransaction>();

const isolationLevels = new Set(["READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]);

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

/**
 * Gives the connection back exactly once, and tells whether the transaction is still open:
 * closed from the moment its COMMIT or ROLLBACK is sent.
 */
function releaseExactlyOnce(transaction: AdapterTransaction): { transaction: AdapterTransaction; isOpen: () => boolean } {
  let released = false;
  let ending = false;
  const release = (error?: Error) => {
    ending = true;
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
    const endsTransaction = endingStatements.has(query.sql.trim().toUpperCase());
    if (endsTransaction) ending = true;
    try {
      return await executeRaw(query);
    } catch (error) {
      if (endsTransaction) release(sessionSurvived(error) ? undefined : error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  };
  return { transaction, isOpen: () => !ending };
}

/**
 * The adapter's startTransaction in one round trip: a pooled connection, then BEGIN with the
 * isolation level. The transaction is the adapter itself on that one connection (its
 * statements, type mapping and error conversion are the adapter's own).
 */
async function beginTransaction(adapter: TransactionalAdapter, pool: pg.Pool, isolationLevel: string | undefined, onConnectionError: (error: Error) => void): Promise<AdapterTransaction> {
  if (isolationLevel !== undefined && !isolationLevels.has(isolationLevel)) throw new Error(`unknown isolation level ${isolationLevel}`);
  let connection: pg.PoolClient;
  try {
    connection = await pool.connect();
  } catch (error) {
    return adapter.onError(error);
  }
  connection.on("error", onConnectionError);
  const transaction = Object.create(adapter, {
    client: { value: connection },
    options: { value: { usePhantomQuery: false } },
    cleanup: { value: () => connection.removeListener("error", onConnectionError) },
  }) as AdapterTransaction;
  const savepoint = (statement: string) => async (name: string) => {
    await transaction.executeRaw({ sql: `${statement} ${name}`, args: [], argTypes: [] });
  };
  Object.assign(transaction, { createSavepoint: savepoint("SAVEPOINT"), rollbackToSavepoint: savepoint("ROLLBACK TO SAVEPOINT"), releaseSavepoint: savepoint("RELEASE SAVEPOINT") });
  try {
    await transaction.executeRaw({ sql: isolationLevel ? `BEGIN ISOLATION LEVEL ${isolationLevel}` : "BEGIN", args: [], argTypes: [] });
  } catch (error) {
    transaction.cleanup?.();
    connection.release(error as Error);
    throw error;
  }
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
    transactional.startTransaction = async (isolationLevel) => {
      const { transaction, isOpen } = releaseExactlyOnce(await beginTransaction(transactional, pool, isolationLevel, settings.onIdleConnectionError));
      const opening = openingTransactions.getStore();
      // The first transaction opened in the context is the one its caller asked for.
      if (opening && !opening.runner) opening.runner = transactionRunner(transaction.client, isOpen);
      return transaction;
    };
    return adapter;
  };
  return { adapter: factory, pool };
}
