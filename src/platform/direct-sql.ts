// Raw statements straight to pg, under Prisma's client but with its conventions.
//
// Every raw statement of the service (rows.ts) used to go through Prisma's $queryRaw, which
// costs about 0.3 ms of CPU each on this version (request serialisation, a call stack capture,
// the query compiler's wasm, result deserialisation): a fifth of the server's busy time during
// reserve+confirm cycles (`npm run bench:profile`). Here the same parameterised SQL runs on pg:
// on the pool for plain reads, and on the connection of the current Prisma interactive
// transaction inside one. Prisma still opens, commits, rolls back and times out every
// transaction; a statement sent after the transaction began to end is refused, so nothing can
// run outside it by accident.
//
// Values come back as Prisma's $queryRaw returns them: timestamps as Dates (those stored as UTC
// clock time without a zone read as UTC), int8 as BigInt, numeric as Decimal, json parsed.
// Dates go in as UTC clock time, as the driver adapter sends them; decimals as their digits.
import crypto from "node:crypto";
import pg from "pg";
import { Prisma } from "../generated/prisma/client";
import { boundedByDeadline, DeadlineExceededError, remainingMs } from "./deadline";

/** Runs one parameterised statement and returns its rows. */
export interface SqlRunner {
  rows(sql: Prisma.Sql): Promise<unknown[]>;
}

const oid = { int8: 20, numeric: 1700, date: 1082, timestamp: 1114 } as const;

const utcClockTime = (text: string) => new Date(`${text.replace(" ", "T")}Z`);

const parsers: Record<number, (text: string) => unknown> = {
  [oid.int8]: (text) => BigInt(text),
  [oid.numeric]: (text) => new Prisma.Decimal(text),
  [oid.date]: (text) => new Date(`${text}T00:00:00Z`),
  [oid.timestamp]: utcClockTime,
};

const types = {
  getTypeParser: ((id: number, format?: string) => (format !== "binary" && parsers[id]) || pg.types.getTypeParser(id, format as "text")) as typeof pg.types.getTypeParser,
};

const pad = (value: number, width = 2) => String(value).padStart(width, "0");

/** A Date as UTC clock time, the way the driver adapter writes it to timestamp columns. */
function utcText(date: Date): string {
  const ms = date.getUTCMilliseconds();
  return `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}${ms ? `.${pad(ms, 3)}` : ""}`;
}

function parameter(value: unknown): unknown {
  if (value instanceof Date) return utcText(value);
  if (Prisma.Decimal.isDecimal(value)) return value.toFixed();
  if (Array.isArray(value)) return value.map(parameter);
  return value;
}

/**
 * A statement that failed, with pg's error (its SQLSTATE or socket code) as the cause: an
 * Error of this realm, so that GraphQL and the error translator see it as one.
 */
export class SqlStatementError extends Error {
  override readonly name = "SqlStatementError";
  readonly code: string | undefined;

  constructor(cause: unknown) {
    super(`statement failed: ${(cause as { message?: unknown } | null)?.message ?? String(cause)}`, { cause });
    const code = (cause as { code?: unknown } | null)?.code;
    this.code = typeof code === "string" ? code : undefined;
  }
}

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
export function sessionSurvived(error: unknown): boolean {
  const sqlState = sqlStateOf(error);
  return sqlState !== undefined && !sqlState.startsWith("08") && !sqlState.startsWith("57P");
}

/**
 * Names for statements, so that each connection has PostgreSQL parse, analyse and plan a text
 * once and then only binds and executes it (a named prepared statement; PostgreSQL keeps its
 * plan, and after five executions may keep one generic plan). Bounded: past `namesMax` distinct
 * texts the others run unnamed, as every statement does when preparing is off (behind a pooler
 * in transaction mode that does not carry prepared statements between clients, such as
 * PgBouncer before 1.21).
 */
export class StatementNames {
  private readonly names = new Map<string, string>();

  constructor(
    private readonly enabled: boolean,
    private readonly namesMax: number,
  ) {}

  nameFor(text: string): string | undefined {
    if (!this.enabled) return undefined;
    let name = this.names.get(text);
    if (name === undefined && this.names.size < this.namesMax) {
      name = `splice_${crypto.createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
      this.names.set(text, name);
    }
    return name;
  }
}

/** How a runner sends statements: its wait for an answer, and whether it prepares them. */
export interface StatementSettings {
  queryTimeoutMs: number;
  names: StatementNames;
}

/**
 * Runs one statement, waiting for its answer at most `queryTimeoutMs` and no later than the
 * request's deadline (pg fails it with "Query read timeout"); `onNoAnswer` hears of a statement
 * that failed without an answer from PostgreSQL.
 */
async function run(queryable: pg.Pool | pg.PoolClient, sql: Prisma.Sql, settings: StatementSettings, onNoAnswer?: (error: Error) => void): Promise<unknown[]> {
  const timeoutMs = boundedByDeadline(settings.queryTimeoutMs, "a database statement");
  try {
    const name = settings.names.nameFor(sql.text);
    const result = await queryable.query({ name, text: sql.text, values: sql.values.map(parameter), types, query_timeout: timeoutMs } as pg.QueryConfig);
    return result.rows;
  } catch (error) {
    const failure = new SqlStatementError(error);
    if (!sessionSurvived(error)) onNoAnswer?.(failure);
    throw failure;
  }
}

/**
 * A pooled connection, waited for no later than the request's deadline (the pool's own
 * acquire timeout applies too). One that arrives after the deadline goes back to the pool.
 */
export async function connectWithinDeadline(pool: pg.Pool): Promise<pg.PoolClient> {
  const leftMs = remainingMs();
  if (leftMs === undefined) return pool.connect();
  if (leftMs <= 0) throw new DeadlineExceededError("a database connection");
  const connecting = pool.connect();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError("a database connection")), leftMs);
  });
  try {
    return await Promise.race([connecting, expired]);
  } catch (error) {
    if (error instanceof DeadlineExceededError) connecting.then((late) => late.release(), () => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Statements on the pool: each on whichever connection is free, outside any transaction. A
 * connection whose statement failed without an answer is discarded, not reused.
 */
export function poolRunner(pool: pg.Pool, settings: StatementSettings): SqlRunner {
  return {
    rows: async (sql) => {
      const client = await connectWithinDeadline(pool).catch((error: unknown) => {
        throw error instanceof DeadlineExceededError ? error : new SqlStatementError(error);
      });
      let lost: Error | undefined;
      try {
        return await run(client, sql, settings, (error) => (lost = error));
      } finally {
        client.release(lost);
      }
    },
  };
}

/**
 * A statement for a transaction whose end was already sent: by its work's own mistake, or by
 * Prisma rolling it back at its timeout (TX_TIMEOUT_MS), which is answered as unavailable.
 */
class TransactionClosedError extends Error {
  override readonly name = "TransactionClosedError";
  readonly code = "TransactionClosed";

  constructor() {
    super("the transaction has ended: a statement cannot run outside it");
  }
}

/**
 * Statements on a transaction's own connection, refused once its end has been sent. One that
 * fails without an answer (timed out, connection lost) discards the connection at once.
 */
export function transactionRunner(client: pg.PoolClient, isOpen: () => boolean, discard: (error: Error) => void, settings: StatementSettings): SqlRunner {
  return {
    rows: (sql) => {
      if (!isOpen()) return Promise.reject(new TransactionClosedError());
      return run(client, sql, settings, discard);
    },
  };
}

/** Which runner serves a Prisma client or transaction client; clients without one use Prisma's $queryRaw. */
const runners = new WeakMap<object, SqlRunner>();

export function bindRunner(client: object, runner: SqlRunner): void {
  runners.set(client, runner);
}

export function runnerOf(client: object): SqlRunner | undefined {
  return runners.get(client);
}
