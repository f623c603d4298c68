// The credits module's only door to the database: balances, reservations and the ledger.
//
// Statements are parameterised SQL, each named and its rows parsed (platform/rows.ts, which runs
// them on pg directly): a Prisma model query costs about 1 ms of CPU to compile on this version,
// a raw one through Prisma about 0.3 ms, and the money path runs several per request (measured:
// 15 ms per reservation with model queries). The ledger listing keeps the model API.
import { Prisma } from "../../generated/prisma/client";
import { z } from "zod";
import { assert } from "../../platform/assert";
import type { DatabaseClient, Transaction } from "../../platform/database";
import { column, execute, selectRow, selectRows } from "../../platform/rows";
import type { PageRequest } from "../../platform/pagination";
import type { Balance, LowBalanceAlert } from "./balance";
import type { Grant, Hold } from "./grant-book";
import { customerIdRow, grantCountersUpdate, holdsJson, jsonGrants, jsonHolds, liveGrantsJson, pastExpiry, unexpiredGrant, type GrantRecord } from "./grants.store";
import type { NewLedgerEntry, LedgerEntryRecord } from "./ledger";
import { type ReservationRecord, type ReservationStatus } from "./reservation";

export interface LockedBalance {
  customerId: string;
  /** Balance transactions committed on the customer so far. */
  version: bigint;
  /** As stored: the sum over all the customer's grants, expired ones not yet settled included. */
  balance: Balance;
  alert: LowBalanceAlert;
  /** The customer's grants not retired: with seconds remaining or held, or an expiry still to settle. */
  grants: GrantRecord[];
}

export interface NewReservation {
  customerId: string;
  endpoint: string;
  reservedSeconds: number;
  idempotencyKey: string | null;
  actor: string;
  expiresAt: Date;
}

/** Everything a balance transaction writes at its end, in one statement. */
export interface BalanceCommit {
  customerId: string;
  balance: Balance;
  alert: LowBalanceAlert;
  /** Grants whose counters changed. */
  grants: readonly Grant[];
  entries: readonly NewLedgerEntry[];
  now: Date;
}

export type ReservationSettlement =
  | { status: "CONFIRMED"; actualSeconds: number; chargedSeconds: number; unbilledSeconds: number; settledAt: Date }
  | { status: "RELEASED" | "EXPIRED"; reason: string | null; settledAt: Date };

const reservationColumns = Prisma.sql`id, seq, customer_id, endpoint, reserved_seconds, actual_seconds, charged_seconds,
  unbilled_seconds, status::text AS status, reason, idempotency_key, created_at, expires_at, settled_at, ctid::text AS row_address`;

/** Filters on the status clients see, in which an ACTIVE reservation past expiry is EXPIRED. */
function presentedStatusCondition(status: ReservationStatus | undefined, now: Date): Prisma.Sql {
  switch (status) {
    case undefined:
      return Prisma.sql`TRUE`;
    case "ACTIVE":
      return Prisma.sql`(status = 'ACTIVE' AND NOT ${pastExpiry(now)})`;
    case "EXPIRED":
      return Prisma.sql`(status = 'EXPIRED' OR ${pastExpiry(now)})`;
    default:
      return Prisma.sql`status = ${status}::"ReservationStatus"`;
  }
}

const reservationStatus = z.enum(["ACTIVE", "CONFIRMED", "RELEASED", "EXPIRED"]);

const reservationShape = z.object({
  id: column.uuid,
  seq: column.bigint,
  customer_id: column.uuid,
  endpoint: column.text,
  reserved_seconds: column.int,
  actual_seconds: column.int.nullable(),
  charged_seconds: column.int.nullable(),
  unbilled_seconds: column.int.nullable(),
  status: reservationStatus,
  reason: column.text.nullable(),
  idempotency_key: column.text.nullable(),
  created_at: column.timestamp,
  expires_at: column.timestamp,
  settled_at: column.timestamp.nullable(),
  row_address: column.text,
  });

function toReservation(row: z.infer<typeof reservationShape>): ReservationRecord {
  return {
    id: row.id,
    seq: row.seq,
    customerId: row.customer_id,
    endpoint: row.endpoint,
    reservedSeconds: row.reserved_seconds,
    actualSeconds: row.actual_seconds,
    chargedSeconds: row.charged_seconds,
    unbilledSeconds: row.unbilled_seconds,
    status: row.status,
    reason: row.reason,
    idempotencyKey: row.idempotency_key,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    settledAt: row.settled_at,
    rowAddress: row.row_address,
  };
}

const reservationRow = reservationShape.transform(toReservation);
/** A reservation as row_to_json writes it inside another row (timestamps as ISO text, seq as a number). */
const jsonReservationShape = reservationShape.extend({
  seq: z.coerce.bigint(),
  created_at: z.coerce.date(),
  expires_at: z.coerce.date(),
  settled_at: z.coerce.date().nullable(),
});
const jsonReservation = jsonReservationShape.transform(toReservation);
const jsonReservationWithHolds = jsonReservationShape
  .extend({ holds: jsonHolds })
  .transform((row): { reservation: ReservationRecord; holds: Hold[] } => ({ reservation: toReservation(row), holds: row.holds }));

/** What a balance transaction reads before it begins, with the balance version it was read at. */
export interface ReadBeforeTransaction<Found> {
  version: bigint;
  /** The customer's ACTIVE reservations, expired ones included, oldest first. */
  active: ReservationRecord[];
  found: Found;
}

/** A row of readBeforeSql, what `found` selects parsed by `found`. */
const readBeforeRow = <Found extends z.ZodType>(found: Found) => z.object({ version: column.bigint, active: z.array(jsonReservation), found });

/**
 * What a balance transaction reads before it begins, in one statement (one snapshot): the
 * balance version, the customer's ACTIVE reservations, and what `found` selects (json, or
 * null), correlated with the balance row `b`. No row when the customer has no balance.
 */
const readBeforeSql = (customerId: string, found: Prisma.Sql) => Prisma.sql`
  SELECT b.version,
         COALESCE((SELECT json_agg(row_to_json(r) ORDER BY r.seq) FROM (
             SELECT ${reservationColumns} FROM credit_reservation WHERE customer_id = b.customer_id AND status = 'ACTIVE') r),
           '[]'::json) AS active,
         ${found} AS found
  FROM credit_balance b WHERE b.customer_id = ${customerId}::uuid`;


const committedRow = z.object({ balances: column.int, grants: column.int, version: column.bigint.nullable() });

const balanceRow = z
  .object({
    customer_id: column.uuid,
    seconds_remaining: column.int,
    seconds_reserved: column.int,
    low_balance_threshold_seconds: column.int.nullable(),
    low_balance_alert_armed: column.boolean,
    version: column.bigint,
    grants: jsonGrants,
  })
  .transform(
    (row): LockedBalance => ({
      customerId: row.customer_id,
      version: row.version,
      balance: { secondsRemaining: row.seconds_remaining, secondsReserved: row.seconds_reserved },
      alert: { thresholdSeconds: row.low_balance_threshold_seconds, armed: row.low_balance_alert_armed },
      grants: row.grants,
    }),
  );
const thresholdRow = z.object({ low_balance_threshold_seconds: column.int.nullable() }).transform((row) => row.low_balance_threshold_seconds);

const effectiveBalanceRow = z
  .object({ seconds_remaining: column.int, seconds_reserved: column.int })
  .transform((row): Balance => ({ secondsRemaining: row.seconds_remaining, secondsReserved: row.seconds_reserved }));

export interface UsageRange {
  from: Date;
  to: Date;
  /** date_trunc's unit: day, week or month. */
  unit: "day" | "week" | "month";
}

export interface UsageBucketRecord {
  start: Date;
  endpoint: string | null;
  chargedSeconds: number;
  unbilledSeconds: number;
  jobs: number;
}

const usageRow = z
  .object({
    start: column.timestamp,
    endpoint: column.text.nullable(),
    charged_seconds: column.int,
    unbilled_seconds: column.int,
    jobs: column.int,
  })
  .transform(
    (row): UsageBucketRecord => ({
      start: row.start,
      endpoint: row.endpoint,
      chargedSeconds: row.charged_seconds,
      unbilledSeconds: row.unbilled_seconds,
      jobs: row.jobs,
    }),
  );

const grantCountRow = z.object({ customer_id: column.uuid, grants: column.int });
const statusCountRow = z.object({ status: reservationStatus, count: column.int });

function ledgerInsert(entries: readonly NewLedgerEntry[]): Prisma.Sql {
  const values = entries.map(
    (entry) => Prisma.sql`(${entry.customerId}::uuid, ${entry.kind}::"LedgerEntryKind", ${entry.deltaSeconds}::int,
      ${entry.balanceAfter}::int, ${entry.reservationId}::uuid, ${entry.grantId}::uuid, ${entry.note}, ${entry.actor})`,
  );
  return Prisma.sql`
    INSERT INTO ledger_entry (customer_id, kind, delta_seconds, balance_after, reservation_id, grant_id, note, actor)
    VALUES ${Prisma.join(values)}`;
}

export class CreditsStore {
  /** A new customer's balance row, at zero: its first seconds arrive as a GRANT. */
  async openBalance(tx: Transaction, customerId: string): Promise<void> {
    await execute(tx, "credits.openBalance", Prisma.sql`INSERT INTO credit_balance (customer_id) VALUES (${customerId}::uuid)`);
  }

  /**
   * Locks the customer's balance row for the rest of the transaction, so a concurrent writer
   * fails fast instead of at commit, and reads the grants in the same round trip. Every writer
   * of a grant locks this row first, so once the lock is taken the grants read are the latest.
   */
  async lockBalance(tx: Transaction, customerId: string): Promise<LockedBalance | undefined> {
    return selectRow(tx, "credits.lockBalance", balanceRow, Prisma.sql`
      SELECT b.customer_id, b.seconds_remaining, b.seconds_reserved, b.low_balance_threshold_seconds, b.low_balance_alert_armed, b.version,
             ${liveGrantsJson(Prisma.sql`b.customer_id`)} AS grants
      FROM credit_balance b WHERE b.customer_id = ${customerId}::uuid FOR UPDATE OF b`);
  }

  /**
   * Writes a balance transaction's end in one round trip: the balance row with its alert, the
   * counters of the grants that changed, and the ledger entries (data-modifying CTEs, all run).
   */
  async commitBalance(tx: Transaction, commit: BalanceCommit): Promise<bigint> {
    const { customerId, balance, alert, grants, entries, now } = commit;
    const steps = [
      Prisma.sql`balance AS (
        UPDATE credit_balance SET seconds_remaining = ${balance.secondsRemaining}, seconds_reserved = ${balance.secondsReserved},
          low_balance_threshold_seconds = ${alert.thresholdSeconds}::int, low_balance_alert_armed = ${alert.armed}, updated_at = now(),
          version = version + 1
        WHERE customer_id = ${customerId}::uuid RETURNING version)`,
    ];
    if (grants.length > 0) steps.push(Prisma.sql`grants AS (${grantCountersUpdate(grants, now)})`);
    if (entries.length > 0) steps.push(Prisma.sql`ledger AS (${ledgerInsert(entries)})`);
    const written = await selectRow(tx, "credits.commitBalance", committedRow, Prisma.sql`
      WITH ${Prisma.join(steps, ", ")}
      SELECT (SELECT count(*) FROM balance)::int AS balances, (SELECT max(version) FROM balance) AS version,
             ${grants.length > 0 ? Prisma.sql`(SELECT count(*) FROM grants)::int` : Prisma.sql`0`} AS grants`);
    assert(written?.balances === 1 && written.version !== null, `customer ${customerId}: no balance row to write`);
    assert(written.grants === grants.length, `customer ${customerId}: wrote ${written.grants} of ${grants.length} grants`);
    return written.version;
  }

  async lowBalanceThreshold(db: DatabaseClient, customerId: string): Promise<number | null> {
    return (await selectRow(db, "credits.lowBalanceThreshold", thresholdRow, Prisma.sql`
      SELECT low_balance_threshold_seconds FROM credit_balance WHERE customer_id = ${customerId}::uuid`)) ?? null;
  }

  /**
   * The balance as clients see it, exact at `now` before the sweeper has settled anything:
   * grants past their expiry count for nothing, and ACTIVE reservations past theirs count as
   * returned to their grants (to nothing, for a grant that has expired too).
   */
  async effectiveBalance(db: DatabaseClient, customerId: string, now: Date): Promise<Balance | undefined> {
    return selectRow(db, "credits.effectiveBalance", effectiveBalanceRow, Prisma.sql`
      SELECT COALESCE((SELECT SUM(g.remaining_seconds) FROM credit_grant g
                       WHERE g.customer_id = b.customer_id AND ${unexpiredGrant("g", now)}), 0)::int
             + COALESCE((SELECT SUM(h.held_seconds) FROM credit_reservation r
                           JOIN credit_reservation_hold h ON h.reservation_id = r.id JOIN credit_grant g ON g.id = h.grant_id
                         WHERE r.customer_id = b.customer_id AND ${pastExpiry(now, "r")} AND ${unexpiredGrant("g", now)}), 0)::int
               AS seconds_remaining,
             b.seconds_reserved - COALESCE((SELECT SUM(reserved_seconds) FROM credit_reservation
                                            WHERE customer_id = b.customer_id AND ${pastExpiry(now)}), 0)::int
               AS seconds_reserved
      FROM credit_balance b WHERE b.customer_id = ${customerId}::uuid`);
  }

  async findReservation(db: DatabaseClient, reservationId: string): Promise<ReservationRecord | undefined> {
    return selectRow(db, "credits.findReservation", reservationRow, Prisma.sql`
      SELECT ${reservationColumns} FROM credit_reservation WHERE id = ${reservationId}::uuid`);
  }

  /** The customer's ACTIVE reservations and balance version. */
  async readActive(db: DatabaseClient, customerId: string): Promise<ReadBeforeTransaction<null> | undefined> {
    return selectRow(db, "credits.readActive", readBeforeRow(z.null()), readBeforeSql(customerId, Prisma.sql`NULL::json`));
  }

  /** Before a reservation: also an earlier one with the same idempotency key. */
  async readForReserve(db: DatabaseClient, customerId: string, idempotencyKey: string | null): Promise<ReadBeforeTransaction<ReservationRecord | null> | undefined> {
    const earlier = idempotencyKey === null
      ? Prisma.sql`NULL::json`
      : Prisma.sql`(SELECT row_to_json(e) FROM (
          SELECT ${reservationColumns} FROM credit_reservation WHERE customer_id = b.customer_id AND idempotency_key = ${idempotencyKey}) e)`;
    return selectRow(db, "credits.readForReserve", readBeforeRow(jsonReservation.nullable()), readBeforeSql(customerId, earlier));
  }

  /** Before a settlement: also the reservation with its holds, whoever's it is. */
  async readForSettle(
    db: DatabaseClient,
    customerId: string,
    reservationId: string,
  ): Promise<ReadBeforeTransaction<{ reservation: ReservationRecord; holds: Hold[] } | null> | undefined> {
    const current = Prisma.sql`(SELECT row_to_json(s) FROM (
        SELECT ${reservationColumns}, ${holdsJson(Prisma.sql`credit_reservation.id`)} AS holds
        FROM credit_reservation WHERE id = ${reservationId}::uuid) s)`;
    return selectRow(db, "credits.readForSettle", readBeforeRow(jsonReservationWithHolds.nullable()), readBeforeSql(customerId, current));
  }

  /** Customers holding ACTIVE reservations past expiry, oldest expiry first. */
  async customersWithExpiredReservations(db: DatabaseClient, now: Date, limit: number): Promise<string[]> {
    return selectRows(db, "credits.customersWithExpiredReservations", customerIdRow, Prisma.sql`
      SELECT customer_id FROM credit_reservation
      WHERE ${pastExpiry(now)}
      GROUP BY customer_id ORDER BY MIN(expires_at) LIMIT ${limit}`);
  }

  /** A new reservation and what it holds of each grant, in one statement. */
  async createReservation(tx: Transaction, reservation: NewReservation, holds: readonly Hold[]): Promise<ReservationRecord> {
    assert(holds.length > 0, "a reservation holds seconds of at least one grant");
    const held = holds.map((hold) => Prisma.sql`(${hold.grantId}::uuid, ${hold.seconds}::int)`);
    const created = await selectRow(tx, "credits.createReservation", reservationRow, Prisma.sql`
      WITH created AS (
        INSERT INTO credit_reservation (customer_id, endpoint, reserved_seconds, idempotency_key, actor, expires_at)
        VALUES (${reservation.customerId}::uuid, ${reservation.endpoint}, ${reservation.reservedSeconds},
                ${reservation.idempotencyKey}, ${reservation.actor}, ${reservation.expiresAt})
        RETURNING ${reservationColumns}),
      holds AS (
        INSERT INTO credit_reservation_hold (reservation_id, grant_id, held_seconds)
        SELECT created.id, held.grant_id, held.seconds FROM created, (VALUES ${Prisma.join(held)}) AS held(grant_id, seconds))
      SELECT * FROM created`);
    assert(created, "INSERT ... RETURNING returned no row");
    return created;
  }

  /**
   * Settles an ACTIVE reservation where it was read (balance-transactions.ts checks nothing has
   * changed it since). The trigger credit_reservation_settled_is_final refuses to change a
   * settled one. Found by its row address, not by an index: at Serializable an index scan
   * predicate-locks the index page, and the primary key's pages take every new reservation of
   * every customer, so that unrelated transactions conflicted (measured: 818 aborts in 4 s at
   * 16 clients through the partial index of ACTIVE reservations, 24 through the primary key,
   * and through the primary key twice the retries of the address on a 50-customer table).
   * Undefined when the row is no longer there.
   */
  async settleReservation(
    tx: Transaction,
    reservation: Pick<ReservationRecord, "id" | "rowAddress">,
    settlement: ReservationSettlement,
  ): Promise<ReservationRecord | undefined> {
    const confirmed = settlement.status === "CONFIRMED" ? settlement : undefined;
    const reason = settlement.status === "CONFIRMED" ? null : settlement.reason;
    return selectRow(tx, "credits.settleReservation", reservationRow, Prisma.sql`
      UPDATE credit_reservation SET
        status = ${settlement.status}::"ReservationStatus",
        actual_seconds = ${confirmed?.actualSeconds ?? null}::int,
        charged_seconds = ${confirmed?.chargedSeconds ?? null}::int,
        unbilled_seconds = ${confirmed?.unbilledSeconds ?? null}::int,
        reason = ${reason},
        settled_at = ${settlement.settledAt}
      WHERE ctid = ${reservation.rowAddress}::tid AND id = ${reservation.id}::uuid
      RETURNING ${reservationColumns}`);
  }

  /** GRANT entries per customer whose actor starts with the prefix (e.g. `stripe:`). */
  async grantCountsByActorPrefix(db: DatabaseClient, actorPrefix: string): Promise<Map<string, number>> {
    const pattern = `${actorPrefix.replace(/[\\%_]/g, (character) => `\\${character}`)}%`;
    const rows = await selectRows(db, "credits.grantCountsByActorPrefix", grantCountRow, Prisma.sql`
      SELECT customer_id, count(*)::int AS grants FROM ledger_entry
      WHERE kind = 'GRANT' AND actor LIKE ${pattern} GROUP BY customer_id`);
    return new Map(rows.map((row) => [row.customer_id, row.grants]));
  }

  async countByStatus(db: DatabaseClient): Promise<{ status: string; count: number }[]> {
    return selectRows(db, "credits.countByStatus", statusCountRow, Prisma.sql`
      SELECT status::text AS status, count(*)::int AS count FROM credit_reservation GROUP BY status`);
  }

  async listReservations(
    db: DatabaseClient,
    customerId: string,
    status: ReservationStatus | undefined,
    page: PageRequest,
    now: Date,
  ): Promise<ReservationRecord[]> {
    const after = page.afterSeq === undefined ? Prisma.sql`TRUE` : Prisma.sql`seq < ${page.afterSeq}`;
    return selectRows(db, "credits.listReservations", reservationRow, Prisma.sql`
      SELECT ${reservationColumns} FROM credit_reservation
      WHERE customer_id = ${customerId}::uuid AND ${after} AND ${presentedStatusCondition(status, now)}
      ORDER BY seq DESC LIMIT ${page.first + 1}`);
  }

  /**
   * Charged and unbilled seconds and jobs of CONFIRMED reservations settled in [from, to), per
   * UTC period (date_trunc: weeks start on Monday); every period of the range, empty ones as
   * zeros. At most `limit` rows are read (one more tells the caller there were more).
   */
  async usage(db: DatabaseClient, customerId: string, range: UsageRange, limit: number): Promise<UsageBucketRecord[]> {
    const { from, to, unit } = range;
    // Summed per period first (an index-only scan of the covering partial index, hashed into at
    // most one group per period), then laid over every period of the range: joining the
    // periods to each reservation instead sorted every row of the range (measured: 600 ms for a
    // year of 500,000 jobs, with a sort on disk).
    return selectRows(db, "credits.usage", usageRow, Prisma.sql`
      WITH sums AS (
        SELECT date_trunc(${unit}, settled_at AT TIME ZONE 'UTC') AS start, SUM(charged_seconds) AS charged_seconds,
               SUM(unbilled_seconds) AS unbilled_seconds, count(*) AS jobs
        FROM credit_reservation
        WHERE customer_id = ${customerId}::uuid AND status = 'CONFIRMED' AND settled_at >= ${from} AND settled_at < ${to}
        GROUP BY 1)
      SELECT period.start AT TIME ZONE 'UTC' AS start, NULL::text AS endpoint, COALESCE(s.charged_seconds, 0)::int AS charged_seconds,
             COALESCE(s.unbilled_seconds, 0)::int AS unbilled_seconds, COALESCE(s.jobs, 0)::int AS jobs
      FROM generate_series(date_trunc(${unit}, ${from}::timestamptz AT TIME ZONE 'UTC'),
                           ${to}::timestamptz AT TIME ZONE 'UTC' - interval '1 millisecond',
                           ('1 ' || ${unit})::interval) AS period(start)
      LEFT JOIN sums s ON s.start = period.start
      ORDER BY period.start LIMIT ${limit + 1}`);
  }

  /** The same, split by endpoint: only the (period, endpoint) pairs that had jobs. */
  async usageByEndpoint(db: DatabaseClient, customerId: string, range: UsageRange, limit: number): Promise<UsageBucketRecord[]> {
    const { from, to, unit } = range;
    // Grouped in a subquery (hashed), then ordered: the few groups are sorted, not every row.
    return selectRows(db, "credits.usageByEndpoint", usageRow, Prisma.sql`
      SELECT start AT TIME ZONE 'UTC' AS start, endpoint, charged_seconds::int, unbilled_seconds::int, jobs::int FROM (
        SELECT date_trunc(${unit}, settled_at AT TIME ZONE 'UTC') AS start, endpoint,
               SUM(charged_seconds) AS charged_seconds, SUM(unbilled_seconds) AS unbilled_seconds, count(*) AS jobs
        FROM credit_reservation
        WHERE customer_id = ${customerId}::uuid AND status = 'CONFIRMED' AND settled_at >= ${from} AND settled_at < ${to}
        GROUP BY 1, 2) periods
      ORDER BY 1, 2 LIMIT ${limit + 1}`);
  }

  async listLedger(db: DatabaseClient, customerId: string, page: PageRequest): Promise<LedgerEntryRecord[]> {
    return db.ledgerEntry.findMany({
      where: { customerId, ...(page.afterSeq === undefined ? {} : { id: { lt: page.afterSeq } }) },
      orderBy: { id: "desc" },
      take: page.first + 1,
    });
  }
}
