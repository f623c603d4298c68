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
import { boundedByDeadline, DeadlineExceededError, extendAfterCommit, timeoutWithinDeadline } from "./deadline";
import { connectWithinDeadline, sessionSurvived, transactionRunner, type SqlRunner, type StatementSettings } from "./direct-sql";

interface AdapterQuery {
  sql: string;
}

/** The parts of the adapter's transaction (PgTransaction in @prisma/adapter-pg 7.10) used here. */
interface AdapterTransaction {
  client: pg.PoolClient;
  executeRaw(query: AdapterQuery & { args: unknown[]; argTypes: unknown[] }): Promise<number>;
  queryRaw(query: AdapterQuery & { args: unknown[]; argTypes: unknown[] }): Promise<unknown>;
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
  /**
   * A statement whose answer has not arrived after this fails on the client's side, and its
   * connection is discarded: the server may be gone without a word (a partition, a frozen host).
   */
  queryTimeoutMs: number;
  /** The least a COMMIT waits for its answer, whatever the request's deadline leaves (pools that run transactions). */
  commitWaitMinMs?: number;
  /** An idle connection is closed after this (pg's default: 10 s). */
  idleTimeoutMs?: number;
  /** Server settings for every session (planner choices, the server's own timeouts). */
  sessionOptions?: string;
  /** A connection the server or the network dropped, idle or in use: reported, never thrown. */
  onConnectionError: (error: Error) => void;
}

const endingStatements = new Set(["COMMIT", "ROLLBACK"]);
/**
 * Gives the connection back exactly once, and tells whether the transaction is still open:
 * closed from the moment its COMMIT or ROLLBACK is sent.
 */
function releaseExactlyOnce(transaction: AdapterTransaction, commitWaitMinMs: number): { transaction: AdapterTransaction; isOpen: () => boolean; discard: (error: Error) => void } {
  let released = false;
  let ending = false;
  const release = (error?: Error) => {
    ending = true;
    if (released) return;
    released = true;
    // With an error, pg's pool destroys the connection instead of reusing it.
    transaction.client.release(error);
  };
  const executeRaw = transaction.executeRaw.bind(transaction);
  const queryRaw = transaction.queryRaw.bind(transaction);
  const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));
  transaction.commit = async () => release();
  transaction.rollback = async () => release();
  transaction.executeRaw = async (query) => {
    const statement = query.sql.trim().toUpperCase();
    const endsTransaction = endingStatements.has(statement);
    if (endsTransaction) ending = true;
    // A discarded connection's transaction is over: PostgreSQL rolls back a session that ends.
    if (statement === "ROLLBACK" && released) return 0;
    try {
      // Past the request's deadline a COMMIT is not sent: the answer is 503 and nothing was
      // written (the connection is discarded below, which rolls the transaction back).
      if (statement === "COMMIT") boundedByDeadline(0, "a commit");
      const count = await executeRaw(query);
      if (statement === "COMMIT") extendAfterCommit(commitWaitMinMs);
      return count;
    } catch (error) {
      // A failed ROLLBACK, or any failure of a statement without PostgreSQL's answer, leaves the
      // session in a state not worth trusting: it is discarded. Only a COMMIT that PostgreSQL
      // refused (a serialization failure) leaves a sound session.
      const sound = sessionSurvived(error) && statement !== "ROLLBACK";
      if (endsTransaction || !sound) release(sound ? undefined : asError(error));
      // A ROLLBACK fails only when its session is unusable, and discarding the session ends the
      // transaction as surely. Prisma sends it from a timer at TX_TIMEOUT_MS, where a rejection
      // would go unhandled and end the process.
      if (statement === "ROLLBACK") return 0;
      throw error;
    }
  };
  // A statement that failed without PostgreSQL's answer (timed out, connection lost) leaves the
  // connection unusable: it is discarded at once, so that the ROLLBACK Prisma sends next ends
  // at once too instead of queueing behind the statement that never answered.
  transaction.queryRaw = async (query) => {
    try {
      return await queryRaw(query);
    } catch (error) {
      if (!sessionSurvived(error)) release(asError(error));
      throw error;
    }
  };
  return { transaction, isOpen: () => !ending, discard: release };
}

/**
 * The adapter's startTransaction in one round trip: a pooled connection, then BEGIN with the
 * isolation level. The transaction is the adapter itself on that one connection (its
 * statements, type mapping and error conversion are the adapter's own).
 */
async function beginTransaction(adapter: TransactionalAdapter, pool: pg.Pool, isolationLevel: string | undefined): Promise<AdapterTransaction> {
  if (isolationLevel !== undefined && !isolationLevels.has(isolationLevel)) throw new Error(`unknown isolation level ${isolationLevel}`);
  let connection: pg.PoolClient;
  try {
    connection = await connectWithinDeadline(pool);
  } catch (error) {
    if (error instanceof DeadlineExceededError) throw error;
    return adapter.onError(error);
  }
  const transaction = Object.create(adapter, {
    client: { value: connection },
    options: { value: { usePhantomQuery: false } },
  }) as AdapterTransaction;
  const savepoint = (statement: string) => async (name: string) => {
    await transaction.executeRaw({ sql: `${statement} ${name}`, args: [], argTypes: [] });
  };
  Object.assign(transaction, { createSavepoint: savepoint("SAVEPOINT"), rollbackToSavepoint: savepoint("ROLLBACK TO SAVEPOINT"), releaseSavepoint: savepoint("RELEASE SAVEPOINT") });
  try {
    await transaction.executeRaw({ sql: isolationLevel ? `BEGIN ISOLATION LEVEL ${isolationLevel}` : "BEGIN", args: [], argTypes: [] });
  } catch (error) {
    connection.release(error as Error);
    throw error;
  }
  return transaction;
}

const keepAliveInitialDelayMs = 10_000;

type QueryArguments = [config: (pg.QueryConfig & { query_timeout?: number }) | string, ...rest: unknown[]];

/**
 * pg's Client as every pool here makes them:
 * - with an 'error' listener from the moment it exists. pg-pool listens to a client only while
 *   it is idle, and a listener added after `await pool.connect()` comes too late when the
 *   server's FATAL arrives in the same read as the new connection's ReadyForQuery: pg parses
 *   both in one tick, resolving connect() and then emitting 'error' before the caller's
 *   continuation runs, and an 'error' without a listener ends the process;
 * - waiting for each answer no longer than the request's deadline (platform/deadline.ts), for
 *   statements that do not set their own wait (Prisma's, in and out of transactions). A COMMIT
 *   is given at least `commitWaitMinMs`: sent close to the deadline, it would otherwise be cut
 *   on a healthy server and leave its outcome unknown; on a frozen one it is cut that much later.
 */
function listenedClient(settings: Pick<PoolSettings, "onConnectionError" | "queryTimeoutMs" | "commitWaitMinMs">): typeof pg.Client {
  const { onConnectionError, queryTimeoutMs, commitWaitMinMs = 0 } = settings;
  const timeoutFor = (text: string) => {
    const withinDeadline = timeoutWithinDeadline(queryTimeoutMs);
    return text.trim().toUpperCase() === "COMMIT" ? Math.min(queryTimeoutMs, Math.max(commitWaitMinMs, withinDeadline)) : withinDeadline;
  };
  return class ListenedClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      // pg may report one lost connection twice (the server's FATAL, then the socket's end).
      let reported = false;
      this.on("error", (error: Error) => {
        if (reported) return;
        reported = true;
        onConnectionError(error);
      });
      const query = this.query.bind(this) as (...args: QueryArguments) => unknown;
      this.query = ((...[config, ...rest]: QueryArguments) => {
        // A plain config object only: a submittable (a pg Query, a cursor) keeps its own shape.
        const bounded = typeof config === "object" && Object.getPrototypeOf(config) === Object.prototype && config.query_timeout === undefined && typeof config.text === "string";
        return query(bounded ? { ...config, query_timeout: timeoutFor(config.text) } : config, ...rest);
      }) as typeof this.query;
    }
  };
}

export function createPool(settings: PoolSettings): pg.Pool {
  const pool = new pg.Pool({
    Client: listenedClient(settings),
    connectionString: settings.url,
    max: settings.size,
    connectionTimeoutMillis: settings.acquireTimeoutMs,
    query_timeout: settings.queryTimeoutMs,
    idleTimeoutMillis: settings.idleTimeoutMs,
    // A peer that vanished without closing is probed after 10 s idle instead of the OS's 2 hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: keepAliveInitialDelayMs,
    options: settings.sessionOptions,
  });
  // The pool re-emits an idle client's error; the client's own listener already reported it.
  pool.on("error", () => undefined);
  return pool;
}

/** The adapter over a new pool; `statements` says how our own statements run inside its transactions. */
export function createPgAdapter(settings: PoolSettings, statements: StatementSettings): { adapter: PrismaPg; pool: pg.Pool } {
  const pool = createPool(settings);
  const factory = new PrismaPg(pool);
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const transactional = adapter as unknown as TransactionalAdapter;
    transactional.startTransaction = async (isolationLevel) => {
      const { transaction, isOpen, discard } = releaseExactlyOnce(await beginTransaction(transactional, pool, isolationLevel), settings.commitWaitMinMs ?? 0);
      const opening = openingTransactions.getStore();
      // The first transaction opened in the context is the one its caller asked for.
      if (opening && !opening.runner) opening.runner = transactionRunner(transaction.client, isOpen, discard, statements);
      return transaction;
    };
    return adapter;
  };
  return { adapter: factory, pool };
}
