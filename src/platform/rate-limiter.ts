// Fixed-window counters in PostgreSQL, so every instance shares the same limits.
import { z } from "zod";
import { Prisma } from "../generated/prisma/client";
import type { DatabaseClient } from "./database";
import { assert } from "./assert";
import type { Failure } from "./failures";
import { column, selectRow } from "./rows";

const countRow = z.object({ count: column.int }).transform((row) => row.count);
const windowStartRow = z.object({ window_start: column.timestamp }).transform((row) => row.window_start);

export class RateLimiter {
  constructor(
    private readonly database: DatabaseClient,
    private readonly windowSeconds: number,
  ) {}

  /** The count in the bucket's current window (0 when its window has passed). */
  async count(bucket: string, now: Date): Promise<number> {
    const windowStart = new Date(now.getTime() - this.windowSeconds * 1000);
    const count = await selectRow(this.database, "rateLimit.count", countRow, Prisma.sql`
      SELECT count FROM rate_limit_window WHERE bucket = ${bucket} AND window_start > ${windowStart}`);
    return count ?? 0;
  }

  /** Adds one to the bucket, starting a new window when the old one has passed. */
  async hit(bucket: string, now: Date): Promise<number> {
    const windowStart = new Date(now.getTime() - this.windowSeconds * 1000);
    const count = await selectRow(this.database, "rateLimit.hit", countRow, Prisma.sql`
      INSERT INTO rate_limit_window (bucket, window_start, count) VALUES (${bucket}, ${now}, 1)
      ON CONFLICT (bucket) DO UPDATE SET
        count = CASE WHEN rate_limit_window.window_start > ${windowStart} THEN rate_limit_window.count + 1 ELSE 1 END,
        window_start = CASE WHEN rate_limit_window.window_start > ${windowStart} THEN rate_limit_window.window_start ELSE ${now} END
      RETURNING count`);
    assert(count !== undefined, "INSERT ... ON CONFLICT ... RETURNING returned no row");
    return count;
  }

  /**
   * Counts one use of the bucket; past `max` in the window, the failure to answer with
   * (TOO_MANY_REQUESTS and the seconds until the window ends). The one shape every caller limit has.
   */
  async admit(bucket: string, max: number, now: Date): Promise<Failure | undefined> {
    if ((await this.hit(bucket, now)) <= max) return undefined;
    return { code: "TOO_MANY_REQUESTS", retryAfterSeconds: await this.retryAfterSeconds(bucket, now) };
  }

  /** Seconds until the bucket's window ends. */
  async retryAfterSeconds(bucket: string, now: Date): Promise<number> {
    const windowStart = await selectRow(this.database, "rateLimit.windowStart", windowStartRow, Prisma.sql`
      SELECT window_start FROM rate_limit_window WHERE bucket = ${bucket}`);
    const start = windowStart?.getTime() ?? now.getTime();
    return Math.max(1, Math.ceil((start + this.windowSeconds * 1000 - now.getTime()) / 1000));
  }
}
