// The credits module's door to its grants: credit_grant and credit_reservation_hold. Like
// credits.store.ts, parameterised SQL through platform/rows.ts, each statement named and its rows parsed.
import { Prisma } from "../../generated/prisma/client";
import { z } from "zod";
import { assert } from "../../platform/assert";
import type { DatabaseClient, Transaction } from "../../platform/database";
import type { PageRequest } from "../../platform/pagination";
import { column, selectRow, selectRows } from "../../platform/rows";
import { isRetired, type Grant, type GrantSource, type Hold } from "./grant-book";

/** A grant as stored, with what granted it and when. */
export interface GrantRecord extends Grant {
  customerId: string;
  origin: string | null;
  note: string | null;
  createdAt: Date;
}

export interface NewGrant {
  customerId: string;
  source: GrantSource;
  seconds: number;
  expiresAt: Date | null;
  origin: string | null;
  note: string | null;
  actor: string;
}

/** A grant due an expiry notice: seconds remain, and it expires within the notice period. */
export interface ExpiryNotice {
  grantId: string;
  customerId: string;
  remainingSeconds: number;
  expiresAt: Date;
}

const grantSource = z.enum(["SUBSCRIPTION", "PURCHASE", "STAFF", "INITIAL"]);

const grantColumns = Prisma.sql`id, seq, customer_id, source::text AS source, granted_seconds, remaining_seconds, held_seconds,
  charged_seconds, expired_seconds, taken_back_seconds, pending_take_back_seconds, expires_at,
  expiry_settled_at IS NOT NULL AS expiry_settled, origin, note, created_at`;

const grantFields = {
  id: column.uuid,
  seq: column.bigint,
  customer_id: column.uuid,
  source: grantSource,
  granted_seconds: column.int,
  remaining_seconds: column.int,
  held_seconds: column.int,
  charged_seconds: column.int,
  expired_seconds: column.int,
  taken_back_seconds: column.int,
  pending_take_back_seconds: column.int,
  expires_at: column.timestamp.nullable(),
  expiry_settled: column.boolean,
  origin: column.text.nullable(),
  note: column.text.nullable(),
  created_at: column.timestamp,
};

type GrantRow = z.infer<z.ZodObject<typeof grantFields>>;

function grantRecord(row: GrantRow): GrantRecord {
  return {
    id: row.id,
    seq: row.seq,
    customerId: row.customer_id,
    source: row.source,
    grantedSeconds: row.granted_seconds,
    remainingSeconds: row.remaining_seconds,
    heldSeconds: row.held_seconds,
    chargedSeconds: row.charged_seconds,
    expiredSeconds: row.expired_seconds,
    takenBackSeconds: row.taken_back_seconds,
    pendingTakeBackSeconds: row.pending_take_back_seconds,
    expiresAt: row.expires_at,
    expirySettled: row.expiry_settled,
    origin: row.origin,
    note: row.note,
    createdAt: row.created_at,
  };
}

const grantRow = z.object(grantFields).transform(grantRecord);

/** The same grant as json_agg returns it inside another row (timestamps as ISO text, seq as a number). */
const jsonGrant = z
  .object({ ...grantFields, seq: z.coerce.bigint(), expires_at: z.coerce.date().nullable(), created_at: z.coerce.date() })
  .transform(grantRecord);
export const jsonGrants = z.array(jsonGrant);

/**
 * The grants a balance transaction works on, as a json array inside the balance row's query:
 * those not retired, through their partial index (credit_grant_live_idx), so that only they
 * are fetched and carry Serializable predicate locks, however many grants the customer had.
 */
export const liveGrantsJson = (customerId: Prisma.Sql) => Prisma.sql`
  COALESCE((SELECT json_agg(row_to_json(g) ORDER BY g.seq)
    FROM (SELECT ${grantColumns} FROM credit_grant WHERE customer_id = ${customerId} AND retired_at IS NULL) g), '[]'::json)`;

/**
 * The UPDATE that writes the counters of grants changed in a transaction (and settles their
 * expiry, once), for credits.store.ts's one commit statement. Returns one row per grant.
 */
export function grantCountersUpdate(grants: readonly Grant[], now: Date): Prisma.Sql {
  const values = grants.map(
    (grant) => Prisma.sql`(${grant.id}::uuid, ${grant.remainingSeconds}::int, ${grant.heldSeconds}::int, ${grant.chargedSeconds}::int,
      ${grant.expiredSeconds}::int, ${grant.takenBackSeconds}::int, ${grant.pendingTakeBackSeconds}::int, ${grant.expirySettled}::boolean,
      ${isRetired(grant)}::boolean)`,
  );
  return Prisma.sql`
    UPDATE credit_grant g SET remaining_seconds = v.remaining, held_seconds = v.held, charged_seconds = v.charged,
      expired_seconds = v.expired, taken_back_seconds = v.taken_back, pending_take_back_seconds = v.pending,
      expiry_settled_at = CASE WHEN v.settled THEN COALESCE(g.expiry_settled_at, ${now}) END,
      retired_at = CASE WHEN v.retired THEN COALESCE(g.retired_at, ${now}) END
    FROM (VALUES ${Prisma.join(values)}) AS v(id, remaining, held, charged, expired, taken_back, pending, settled, retired)
    WHERE g.id = v.id
    RETURNING 1`;
}

/** What a reservation holds of each grant, as json_agg returns it inside the reservation's row. */
export const holdsJson = (reservationId: Prisma.Sql) => Prisma.sql`
  COALESCE((SELECT json_agg(json_build_object('grantId', h.grant_id, 'seconds', h.held_seconds))
            FROM credit_reservation_hold h WHERE h.reservation_id = ${reservationId}), '[]'::json)`;
export const jsonHolds = z.array(z.object({ grantId: column.uuid, seconds: column.int }));

const holdRow = z
  .object({ reservation_id: column.uuid, grant_id: column.uuid, held_seconds: column.int })
  .transform((row) => ({ reservationId: row.reservation_id, hold: { grantId: row.grant_id, seconds: row.held_seconds } }));

/**
 * The expiry rule in SQL, the twin of reservation.ts's isPastExpiry: an ACTIVE reservation whose
 * expiry has come counts as expired, whether or not the sweeper has settled it yet. (Here, not
 * in credits.store.ts, which imports this store: both credits stores use it.)
 */
export const pastExpiry = (now: Date, alias = "credit_reservation") =>
  Prisma.sql`(${Prisma.raw(alias)}.status = 'ACTIVE' AND ${Prisma.raw(alias)}.expires_at <= ${now})`;

/** A grant not yet expired at `now`, the twin of grant-book.ts's isExpiredAt. */
export const unexpiredGrant = (alias: string, now: Date) =>
  Prisma.sql`(${Prisma.raw(alias)}.expires_at IS NULL OR ${Prisma.raw(alias)}.expires_at > ${now})`;

export const customerIdRow = z.object({ customer_id: column.uuid }).transform((row) => row.customer_id);

/** Per grant, the seconds ACTIVE reservations past their expiry hold of it: already back, for readers. */
const returningSeconds = (customerId: string, now: Date) => Prisma.sql`
  SELECT h.grant_id, SUM(h.held_seconds)::int AS seconds
  FROM credit_reservation r JOIN credit_reservation_hold h ON h.reservation_id = r.id
  WHERE r.customer_id = ${customerId}::uuid AND ${pastExpiry(now, "r")}
  GROUP BY h.grant_id`;

const presentedGrantRow = z
  .object({ ...grantFields, returning_seconds: column.int })
  .transform((row) => ({ grant: grantRecord(row), returningSeconds: row.returning_seconds }));

const expiryNoticeRow = z
  .object({ id: column.uuid, customer_id: column.uuid, remaining_seconds: column.int, expires_at: column.timestamp })
  .transform((row): ExpiryNotice => ({ grantId: row.id, customerId: row.customer_id, remainingSeconds: row.remaining_seconds, expiresAt: row.expires_at }));

export class GrantsStore {
  async insertGrant(tx: Transaction, grant: NewGrant): Promise<GrantRecord> {
    const created = await selectRow(tx, "credits.insertGrant", grantRow, Prisma.sql`
      INSERT INTO credit_grant (customer_id, source, granted_seconds, remaining_seconds, expires_at, origin, note, actor)
      VALUES (${grant.customerId}::uuid, ${grant.source}::"CreditGrantSource", ${grant.seconds}, ${grant.seconds},
              ${grant.expiresAt}, ${grant.origin}, ${grant.note}, ${grant.actor})
      RETURNING ${grantColumns}`);
    assert(created, "INSERT ... RETURNING returned no row");
    return created;
  }

  /** What each reservation holds of which grant. Holds are written once, under the customer's lock. */
  async holdsOf(db: DatabaseClient, reservationIds: readonly string[]): Promise<Map<string, Hold[]>> {
    const holds = new Map<string, Hold[]>(reservationIds.map((id) => [id, []]));
    if (reservationIds.length === 0) return holds;
    const rows = await selectRows(db, "credits.holdsOf", holdRow, Prisma.sql`
      SELECT reservation_id, grant_id, held_seconds FROM credit_reservation_hold
      WHERE reservation_id IN (${Prisma.join(reservationIds.map((id) => Prisma.sql`${id}::uuid`))})`);
    for (const row of rows) holds.get(row.reservationId)?.push(row.hold);
    return holds;
  }

  /**
   * The customer's grants as readers see them now, each with what ACTIVE reservations past
   * their expiry hold of it (back already, before the sweeper settles them). With `includeSpent`
   * false only grants not yet expired with seconds remaining or held. Spending order, paged.
   */
  async listGrants(
    db: DatabaseClient,
    customerId: string,
    options: { includeSpent: boolean; page: PageRequest | undefined },
    now: Date,
  ): Promise<{ grant: GrantRecord; returningSeconds: number }[]> {
    const live = options.includeSpent
      ? Prisma.sql`TRUE`
      : Prisma.sql`${unexpiredGrant("g", now)} AND (g.remaining_seconds > 0 OR g.held_seconds > 0)`;
    const orderKey = Prisma.sql`(COALESCE(g.expires_at, 'infinity'::timestamptz), g.seq)`;
    const after =
      options.page?.afterSeq === undefined
        ? Prisma.sql`TRUE`
        : Prisma.sql`${orderKey} > (SELECT COALESCE(expires_at, 'infinity'::timestamptz), seq FROM credit_grant WHERE seq = ${options.page.afterSeq})`;
    const limit = options.page === undefined ? Prisma.sql`` : Prisma.sql`LIMIT ${options.page.first + 1}`;
    return selectRows(db, "credits.listGrants", presentedGrantRow, Prisma.sql`
      SELECT ${grantColumns}, COALESCE(x.seconds, 0)::int AS returning_seconds
      FROM credit_grant g LEFT JOIN (${returningSeconds(customerId, now)}) x ON x.grant_id = g.id
      WHERE g.customer_id = ${customerId}::uuid AND ${live} AND ${after}
      ORDER BY ${orderKey} ${limit}`);
  }

  /** Customers with a grant whose expiry is due to be settled, soonest first. */
  async customersWithDueGrants(db: DatabaseClient, now: Date, limit: number): Promise<string[]> {
    return selectRows(db, "credits.customersWithDueGrants", customerIdRow, Prisma.sql`
      SELECT customer_id FROM credit_grant
      WHERE expiry_settled_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ${now}
      GROUP BY customer_id ORDER BY MIN(expires_at) LIMIT ${limit}`);
  }

  /** Grants of at least `minSeconds` with seconds left, expiring in (now, until], no notice queued yet. */
  async grantsDueExpiryNotice(db: DatabaseClient, now: Date, until: Date, minSeconds: number, limit: number): Promise<ExpiryNotice[]> {
    return selectRows(db, "credits.grantsDueExpiryNotice", expiryNoticeRow, Prisma.sql`
      SELECT id, customer_id, remaining_seconds, expires_at FROM credit_grant
      WHERE expiry_settled_at IS NULL AND expires_at IS NOT NULL AND expires_at > ${now} AND expires_at <= ${until}
        AND expiry_notice_queued_at IS NULL AND granted_seconds >= ${minSeconds} AND remaining_seconds > 0
      ORDER BY expires_at LIMIT ${limit}`);
  }

  /**
   * Marks the notice queued, unless another instance did first; what remains then, or undefined.
   * Like every write of a grant, under its customer's balance row lock.
   */
  async claimExpiryNotice(tx: Transaction, grantId: string, now: Date): Promise<ExpiryNotice | undefined> {
    return selectRow(tx, "credits.claimExpiryNotice", expiryNoticeRow, Prisma.sql`
      WITH locked AS (
        SELECT b.customer_id FROM credit_balance b
        WHERE b.customer_id = (SELECT customer_id FROM credit_grant WHERE id = ${grantId}::uuid)
        FOR UPDATE OF b)
      UPDATE credit_grant SET expiry_notice_queued_at = ${now}
      WHERE id = ${grantId}::uuid AND customer_id = (SELECT customer_id FROM locked)
        AND expiry_notice_queued_at IS NULL AND remaining_seconds > 0 AND expiry_settled_at IS NULL
      RETURNING id, customer_id, remaining_seconds, expires_at`);
  }
}
