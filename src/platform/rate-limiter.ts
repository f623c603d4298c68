// Fixed-window counters in PostgreSQL, so every instance shares the same limits.
import type { DatabaseClient } from "./database";

export class RateLimiter {
  constructor(
    private readonly database: DatabaseClient,
    private readonly windowSeconds: number,
  ) {}

  /** The count in the bucket's current window (0 when its window has passed). */
  async count(bucket: string, now: Date): Promise<number> {
    const windowStart = new Date(now.getTime() - this.windowSeconds * 1000);
    const rows = await this.database.$queryRaw<{ count: number }[]>`
      SELECT count FROM rate_limit_window WHERE bucket = ${bucket} AND window_start > ${windowStart}`;
    return rows[0]?.count ?? 0;
  }

  /** Adds one to the bucket, starting a new window when the old one has passed. */
  async hit(bucket: string, now: Date): Promise<number> {
    const windowStart = new Date(now.getTime() - this.windowSeconds * 1000);
    const rows = await this.database.$queryRaw<{ count: number }[]>`
      INSERT INTO rate_limit_window (bucket, window_start, count) VALUES (${bucket}, ${now}, 1)
      ON CONFLICT (bucket) DO UPDATE SET
        count = CASE WHEN rate_limit_window.window_start > ${windowStart} THEN rate_limit_window.count + 1 ELSE 1 END,
        window_start = CASE WHEN rate_limit_window.window_start > ${windowStart} THEN rate_limit_window.window_start ELSE ${now} END
      RETURNING count`;
    return rows[0]!.count;
  }

  /** Seconds until the bucket's window ends. */
  async retryAfterSeconds(bucket: string, now: Date): Promise<number> {
    const rows = await this.database.$queryRaw<{ window_start: Date }[]>`
      SELECT window_start FROM rate_limit_window WHERE bucket = ${bucket}`;
    const start = rows[0]?.window_start.getTime() ?? now.getTime();
    return Math.max(1, Math.ceil((start + this.windowSeconds * 1000 - now.getTime()) / 1000));
  }
}
