// The outbox table: jobs written inside the transaction that causes them, claimed after commit
// by any instance with FOR UPDATE SKIP LOCKED under a lease, every attempt recorded.
import { z } from "zod";
import { Prisma } from "../../generated/prisma/client";
import { assert } from "../assert";
import type { DatabaseClient, Transaction } from "../database";
import { column, selectRow, selectRows, execute } from "../rows";

export interface NewOutboxJob {
  kind: string;
  customerId: string | null;
  payload: Record<string, unknown>;
}

export interface ClaimedJob {
  id: string;
  kind: string;
  customerId: string | null;
  payload: Record<string, unknown>;
  /** This attempt's number; also the fencing token that lets only this claim finish the job. */
  attempt: number;
}

const errorMaxLength = 2000;

const idRow = z.object({ id: column.uuid }).transform((row) => row.id);
const countRow = z.object({ n: column.int }).transform((row) => row.n);
const claimedRow = z
  .object({ id: column.uuid, kind: column.text, customer_id: column.uuid.nullable(), payload: z.record(z.string(), z.unknown()), attempts: column.int })
  .transform((row): ClaimedJob => ({ id: row.id, kind: row.kind, customerId: row.customer_id, payload: row.payload, attempt: row.attempts }));

export class OutboxStore {
  async enqueue(tx: Transaction, job: NewOutboxJob): Promise<string> {
    const id = await selectRow(tx, "outbox.enqueue", idRow, Prisma.sql`
      INSERT INTO outbox_job (kind, customer_id, payload)
      VALUES (${job.kind}, ${job.customerId}::uuid, ${JSON.stringify(job.payload)}::jsonb)
      RETURNING id`);
    assert(id, "INSERT ... RETURNING returned no row");
    return id;
  }

  /** Claims up to `limit` due jobs for `leaseSeconds`; jobs another instance holds are skipped. */
  async claimDue(db: DatabaseClient, now: Date, limit: number, leaseSeconds: number): Promise<ClaimedJob[]> {
    const leasedUntil = new Date(now.getTime() + leaseSeconds * 1000);
    return selectRows(db, "outbox.claimDue", claimedRow, Prisma.sql`
      UPDATE outbox_job SET leased_until = ${leasedUntil}, attempts = attempts + 1
      WHERE id IN (
        SELECT id FROM outbox_job
        WHERE status = 'PENDING' AND next_attempt_at <= ${now} AND (leased_until IS NULL OR leased_until <= ${now})
        ORDER BY next_attempt_at LIMIT ${limit}
        FOR UPDATE SKIP LOCKED)
      RETURNING id, kind, customer_id, payload, attempts`);
  }

  async succeeded(db: DatabaseClient, job: ClaimedJob, startedAt: Date, now: Date): Promise<void> {
    await execute(db, "outbox.succeeded", Prisma.sql`
      WITH finished AS (
        UPDATE outbox_job SET status = 'DONE', done_at = ${now}, leased_until = NULL, last_error = NULL
        WHERE id = ${job.id}::uuid AND attempts = ${job.attempt} AND status = 'PENDING'
        RETURNING id)
      INSERT INTO outbox_attempt (job_id, attempt, succeeded, started_at, ended_at)
      SELECT id, ${job.attempt}, true, ${startedAt}, ${now} FROM finished`);
  }

  /** Records a failed attempt; the job waits until `retryAt`, or is dead when that is undefined. */
  async failed(db: DatabaseClient, job: ClaimedJob, error: string, startedAt: Date, now: Date, retryAt: Date | undefined): Promise<void> {
    const message = error.slice(0, errorMaxLength);
    const status = retryAt ? "PENDING" : "DEAD";
    await execute(db, "outbox.failed", Prisma.sql`
      WITH finished AS (
        UPDATE outbox_job SET status = ${status}::"OutboxJobStatus", next_attempt_at = ${retryAt ?? now},
          leased_until = NULL, last_error = ${message}
        WHERE id = ${job.id}::uuid AND attempts = ${job.attempt} AND status = 'PENDING'
        RETURNING id)
      INSERT INTO outbox_attempt (job_id, attempt, succeeded, error, started_at, ended_at)
      SELECT id, ${job.attempt}, false, ${message}, ${startedAt}, ${now} FROM finished`);
  }

  async pendingCount(db: DatabaseClient): Promise<number> {
    const pending = await selectRow(db, "outbox.pendingCount", countRow, Prisma.sql`SELECT count(*)::int AS n FROM outbox_job WHERE status = 'PENDING'`);
    return pending ?? 0;
  }
}
