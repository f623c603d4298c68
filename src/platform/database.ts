// The one PrismaClient, and the helper through which every money-moving transaction runs:
// Serializable isolation, the whole transaction retried on serialization failures and
// deadlocks with exponential backoff and full jitter, a bounded number of attempts.
import type pg from "pg";
import { PrismaClient, Prisma } from "../generated/prisma/client";
import type { Config, DatabaseTimeouts } from "../config";
import { boundedByDeadline } from "./deadline";
import { ServiceUnavailableError, isFailedOutcome, type Failure } from "./failures";
import { bindRunner, poolRunner, StatementNames } from "./direct-sql";
import { createPgAdapter, openingTransactions, type OpeningTransaction } from "./pg-adapter";

/**
 * The one PrismaClient, with the pg pool under it (its own to close; read for pool metrics)
 * and a count of connections the server dropped (restarts, failovers, killed backends).
 */
export type Database = PrismaClient & { pool: pg.Pool; health: { connectionErrors: number } };
/** What a store receives: the root client for plain reads, a transaction for everything else. */
export type DatabaseClient = PrismaClient | Prisma.TransactionClient;
export type Transaction = Prisma.TransactionClient;

/**
 * Every session of the Prisma pool (transactions, plain reads, metrics, the audit) plans with
 * index scans only, whatever the table statistics say. At Serializable a sequential scan takes
 * a predicate lock on the whole table, and on a small table (every new deployment) the planner
 * prefers one for a lookup by id: then transactions on different customers conflict with each
 * other. Index scans lock only the index pages and rows they read. A query with no index to
 * use still scans. Sessions are in UTC: the driver adapter sends and reads timestamps as UTC
 * clock time without a zone, so SQL date arithmetic (usage periods) must not depend on the
 * server's TimeZone setting. The server's own timeouts end a statement that runs too long and a
 * session whose client left it inside a transaction (its locks with it).
 */
function sessionOptions(timeouts: DatabaseTimeouts): string {
  return [
    "-c enable_seqscan=off -c enable_bitmapscan=off -c TimeZone=UTC",
    `-c statement_timeout=${timeouts.statementMs}`,
    `-c idle_in_transaction_session_timeout=${timeouts.idleInTransactionMs}`,
  ].join(" ");
}

export interface DatabaseSettings {
  poolSize: number;
  /** Waiting for a pooled connection (TX_MAX_WAIT_MS). */
  acquireTimeoutMs: number;
  timeouts: DatabaseTimeouts;
  /** Named prepared statements: whether, and at most how many distinct texts. */
  preparedStatements: { enabled: boolean; namesMax: number };
  /** The least a COMMIT waits for its answer (TX_COMMIT_WAIT_MIN_MS). */
  commitWaitMinMs: number;
}

/** The service's pool settings from its configuration. */
export function databaseSettingsOf(config: Pick<Config, "database" | "transactions">): DatabaseSettings {
  return { poolSize: config.database.poolSize, acquireTimeoutMs: config.transactions.maxWaitMs, timeouts: config.database.timeouts, preparedStatements: config.database.preparedStatements, commitWaitMinMs: config.transactions.commitWaitMinMs };
}

export function createDatabase(url: string, settings: DatabaseSettings, onConnectionError: (error: Error) => void = () => undefined): Database {
  const health = { connectionErrors: 0 };
  // One naming of statements for the pool and the transactions on it.
  const statements = { queryTimeoutMs: settings.timeouts.queryMs, names: new StatementNames(settings.preparedStatements.enabled, settings.preparedStatements.namesMax) };
  const { adapter, pool } = createPgAdapter({
    url,
    size: settings.poolSize,
    acquireTimeoutMs: settings.acquireTimeoutMs,
    queryTimeoutMs: settings.timeouts.queryMs,
    commitWaitMinMs: settings.commitWaitMinMs,
    sessionOptions: sessionOptions(settings.timeouts),
    onConnectionError: (error) => {
      health.connectionErrors += 1;
      onConnectionError(error);
    },
  }, statements);
  // "minimal": no call stack captured on every query to decorate an error message nobody sees
  // (errors are logged and translated, never shown to clients as Prisma words them).
  const client = Object.assign(new PrismaClient({ adapter, errorFormat: "minimal" }), { pool, health });
  bindRunner(client, poolRunner(pool, statements));
  return client;
}

/** Whether the database answers: for the readiness probe. */
export async function pingDatabase(database: Database): Promise<void> {
  await database.$queryRaw`SELECT 1`;
}

export async function closeDatabase(database: Database): Promise<void> {
  await database.$disconnect();
  await database.pool.end();
}

export interface TransactionCounters {
  attempts: number;
  conflicts: number;
  exhausted: number;
  unavailable: number;
}

const retryableMarkers = new Set(["P2034", "40001", "40P01", "TransactionWriteConflict", "StaleRead"]);
// Prisma's connection codes, the driver adapter's kinds, socket errors, and PostgreSQL's
// SQLSTATEs for a server going away or refusing sessions (classes 08 and 57P, 53300).
const unavailableMarkers = new Set([
  "P1001", "P1002", "P1017", "P2024", "P2028", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH",
  "ENETUNREACH", "ECONNABORTED", "ENOTFOUND", "EAI_AGAIN", "ENOTCONN", "08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03", "53300",
  "DatabaseNotReachable", "ConnectionClosed", "TooManyConnections", "SocketTimeout", "ConnectionLost", "TransactionClosed",
  // A statement the server cancelled at statement_timeout, a session it ended for idling in a
  // transaction, and a request whose deadline passed while it waited for the database.
  "57014", "25P03", "DeadlineExceeded",
]);
// node-postgres reports a lost or unobtainable connection as a plain Error with no code.
const unavailableMessages =
  /Connection terminated|Query read timeout|not queryable|timeout exceeded when trying to connect|Cannot use a pool after calling end|terminating connection due to administrator command|the database system is (starting up|shutting down|in recovery mode)/i;
const markerSearchDepth = 4;

/** Error codes and pg's connection messages found on an error and the causes Prisma and pg nest inside it. */
function errorMarkers(error: unknown, depth = 0, found = new Set<string>()): Set<string> {
  if (depth > markerSearchDepth || error === null || typeof error !== "object") return found;
  const record = error as Record<string, unknown>;
  for (const key of ["code", "originalCode", "kind"]) {
    if (typeof record[key] === "string") found.add(record[key] as string);
  }
  for (const key of ["message", "originalMessage", "reason"]) {
    if (typeof record[key] === "string" && unavailableMessages.test(record[key] as string)) found.add("ConnectionLost");
  }
  // A failed system call (socket, DNS) with no answer from PostgreSQL: the network is the problem.
  if (typeof record.syscall === "string") found.add("ConnectionLost");
  for (const key of ["meta", "cause", "driverAdapterError"]) errorMarkers(record[key], depth + 1, found);
  return found;
}

const hasAny = (markers: Set<string>, wanted: Set<string>) => [...markers].some((marker) => wanted.has(marker));

/** A conflict to try again; not one whose retries already ran out (a 503 with the conflict as its cause). */
export const isRetryableConflict = (error: unknown) => !(error instanceof ServiceUnavailableError) && hasAny(errorMarkers(error), retryableMarkers);

/**
 * Thrown inside a transaction that finds what was read before it began no longer current: a
 * conflict like PostgreSQL's, retried from the reads.
 */
export class StaleReadError extends Error {
  override readonly name = "StaleReadError";
  readonly code = "StaleRead";
}
export const isDatabaseUnavailable = (error: unknown) => hasAny(errorMarkers(error), unavailableMarkers);

/**
 * Thrown inside a transaction to roll it back when the work returned a failure, so that nothing
 * a failed operation wrote before deciding to fail is committed; caught again outside.
 */
class RollbackForFailure extends Error {
  constructor(readonly failure: Failure) {
    super(`rolled back: ${failure.code}`);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Transactor {
  readonly counters: TransactionCounters = { attempts: 0, conflicts: 0, exhausted: 0, unavailable: 0 };

  constructor(
    private readonly database: Database,
    private readonly limits: Config["transactions"],
  ) {}

  /**
   * Runs `work` in a Serializable transaction, retrying all of it on conflict. When `work`
   * returns a failed Outcome the transaction is rolled back and the failure returned.
   */
  serializable<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.retrying(() => this.once(work));
  }

  /**
   * One Serializable transaction, not retried: a conflict is counted and thrown as it is
   * (isRetryableConflict), for a caller that retries more than the transaction (retrying).
   */
  async once<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const opening: OpeningTransaction = {};
    const failOnFailure = async (tx: Transaction) => {
      if (opening.runner) bindRunner(tx, opening.runner);
      const result = await work(tx);
      if (isFailedOutcome(result)) throw new RollbackForFailure(result.failure);
      return result;
    };
    this.counters.attempts += 1;
    try {
      return await openingTransactions.run(opening, () =>
        this.database.$transaction(failOnFailure, {
          isolationLevel: Prisma.TransactionIsolationLevel.Serializable,
          maxWait: boundedByDeadline(this.limits.maxWaitMs, "a database connection"),
          timeout: boundedByDeadline(this.limits.timeoutMs, "a transaction"),
        }),
      );
    } catch (error) {
      if (error instanceof RollbackForFailure) return { ok: false, failure: error.failure } as T;
      if (isDatabaseUnavailable(error)) {
        this.counters.unavailable += 1;
        throw new ServiceUnavailableError("database unavailable", { cause: error });
      }
      if (isRetryableConflict(error)) this.counters.conflicts += 1;
      throw error;
    }
  }

  /**
   * Runs `attempt` again while it conflicts, with backoff, up to the attempt limit; then
   * answers unavailable. `earlier` is a conflicted attempt already made elsewhere.
   */
  async retrying<T>(attempt: () => Promise<T>, earlier?: { conflict: unknown }): Promise<T> {
    let made = earlier ? 1 : 0;
    let conflict = earlier?.conflict;
    for (;;) {
      if (made > 0) {
        if (made >= this.limits.maxAttempts) {
          this.counters.exhausted += 1;
          throw new ServiceUnavailableError(`transaction still conflicting after ${made} attempts`, { cause: conflict });
        }
        await sleep(boundedByDeadline(this.backoffMs(made), "a retry after a conflict"));
      }
      try {
        return await attempt();
      } catch (error) {
        if (!isRetryableConflict(error)) throw error;
        conflict = error;
        made += 1;
      }
    }
  }

  /** Full jitter: a uniform wait up to an exponentially growing, capped ceiling. */
  private backoffMs(attempt: number): number {
    const ceilingMs = Math.min(this.limits.backoffMaxMs, this.limits.backoffBaseMs * 2 ** attempt);
    return Math.random() * ceilingMs;
  }
}
