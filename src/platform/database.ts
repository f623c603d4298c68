// The one PrismaClient, and the helper through which every money-moving transaction runs:
// Serializable isolation, the whole transaction retried on serialization failures and
// deadlocks with exponential backoff and full jitter, a bounded number of attempts.
import type pg from "pg";
import { PrismaClient, Prisma } from "../generated/prisma/client";
import type { Config } from "../config";
import { ServiceUnavailableError } from "./failures";
import { createPgAdapter } from "./pg-adapter";

/** The one PrismaClient, with the pg pool under it (its own to close; read for pool metrics). */
export type Database = PrismaClient & { pool: pg.Pool };
/** What a store receives: the root client for plain reads, a transaction for everything else. */
export type DatabaseClient = PrismaClient | Prisma.TransactionClient;
export type Transaction = Prisma.TransactionClient;

export function createDatabase(url: string, poolSize: number, acquireTimeoutMs: number): Database {
  const { adapter, pool } = createPgAdapter(url, poolSize, acquireTimeoutMs);
  const client = new PrismaClient({ adapter });
  return Object.assign(client, { pool });
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

const retryableMarkers = new Set(["P2034", "40001", "40P01", "TransactionWriteConflict"]);
const unavailableMarkers = new Set([
  "P1001", "P1002", "P1017", "P2024", "P2028", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT",
  "57P01", "57P02", "57P03", "53300", "DatabaseNotReachable", "ConnectionClosed", "TooManyConnections",
]);
const markerSearchDepth = 4;

/** Error codes found on an error and the causes and metadata Prisma and pg nest inside it. */
function errorMarkers(error: unknown, depth = 0, found = new Set<string>()): Set<string> {
  if (depth > markerSearchDepth || error === null || typeof error !== "object") return found;
  const record = error as Record<string, unknown>;
  for (const key of ["code", "originalCode", "kind"]) {
    if (typeof record[key] === "string") found.add(record[key] as string);
  }
  for (const key of ["meta", "cause", "driverAdapterError"]) errorMarkers(record[key], depth + 1, found);
  return found;
}

const hasAny = (markers: Set<string>, wanted: Set<string>) => [...markers].some((marker) => wanted.has(marker));

export const isRetryableConflict = (error: unknown) => hasAny(errorMarkers(error), retryableMarkers);
export const isDatabaseUnavailable = (error: unknown) => hasAny(errorMarkers(error), unavailableMarkers);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Transactor {
  readonly counters: TransactionCounters = { attempts: 0, conflicts: 0, exhausted: 0, unavailable: 0 };

  constructor(
    private readonly database: Database,
    private readonly limits: Config["transactions"],
  ) {}

  /** Runs `work` in a Serializable transaction, retrying all of it on conflict. */
  async serializable<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      this.counters.attempts += 1;
      try {
        return await this.database.$transaction(work, {
          isolationLevel: Prisma.TransactionIsolationLevel.Serializable,
          maxWait: this.limits.maxWaitMs,
          timeout: this.limits.timeoutMs,
        });
      } catch (error) {
        if (isDatabaseUnavailable(error)) {
          this.counters.unavailable += 1;
          throw new ServiceUnavailableError("database unavailable", { cause: error });
        }
        if (!isRetryableConflict(error)) throw error;
        this.counters.conflicts += 1;
        if (attempt >= this.limits.maxAttempts) {
          this.counters.exhausted += 1;
          throw new ServiceUnavailableError(`transaction still conflicting after ${attempt} attempts`, { cause: error });
        }
        await sleep(this.backoffMs(attempt));
      }
    }
  }

  /** Full jitter: a uniform wait up to an exponentially growing, capped ceiling. */
  private backoffMs(attempt: number): number {
    const ceilingMs = Math.min(this.limits.backoffMaxMs, this.limits.backoffBaseMs * 2 ** attempt);
    return Math.random() * ceilingMs;
  }
}
