// The credits module's only door to the database: balances, reservations and the ledger.
import type { DatabaseClient, Transaction } from "../../platform/database";
import type { PageRequest } from "../../platform/pagination";
import type { Balance } from "./balance";
import type { NewLedgerEntry, LedgerEntryRecord } from "./ledger";
import type { ReservationRecord, ReservationStatus } from "./reservation";

export interface LockedCustomer {
  id: string;
  balance: Balance;
}

export interface NewReservation {
  customerId: string;
  endpoint: string;
  reservedSeconds: number;
  idempotencyKey: string | null;
  actor: string;
  expiresAt: Date;
}

export type ReservationSettlement =
  | { status: "CONFIRMED"; actualSeconds: number; chargedSeconds: number; unbilledSeconds: number; settledAt: Date }
  | { status: "RELEASED" | "EXPIRED"; reason: string | null; settledAt: Date };

export class CreditsStore {
  /**
   * Locks the customer's row for the rest of the transaction. Within one Serializable
   * transaction this makes a concurrent writer fail fast instead of at commit.
   */
  async lockCustomer(tx: Transaction, customerId: string): Promise<LockedCustomer | undefined> {
    const rows = await tx.$queryRaw<{ id: string; seconds_remaining: number; seconds_reserved: number }[]>`
      SELECT id, seconds_remaining, seconds_reserved FROM customer WHERE id = ${customerId}::uuid FOR UPDATE`;
    const row = rows[0];
    if (!row) return undefined;
    return { id: row.id, balance: { secondsRemaining: row.seconds_remaining, secondsReserved: row.seconds_reserved } };
  }

  async saveBalance(tx: Transaction, customerId: string, balance: Balance): Promise<void> {
    await tx.customer.update({
      where: { id: customerId },
      data: { secondsRemaining: balance.secondsRemaining, secondsReserved: balance.secondsReserved },
    });
  }

  /**
   * The balance as clients see it: ACTIVE reservations past their expiry already count as
   * returned, even before the sweeper has settled them.
   */
  async effectiveBalance(db: DatabaseClient, customerId: string, now: Date): Promise<Balance | undefined> {
    const rows = await db.$queryRaw<{ seconds_remaining: number; seconds_reserved: number; expired_seconds: number }[]>`
      SELECT c.seconds_remaining, c.seconds_reserved,
             COALESCE((SELECT SUM(r.reserved_seconds) FROM credit_reservation r
                       WHERE r.customer_id = c.id AND r.status = 'ACTIVE' AND r.expires_at <= ${now}), 0)::int
               AS expired_seconds
      FROM customer c WHERE c.id = ${customerId}::uuid`;
    const row = rows[0];
    if (!row) return undefined;
    return {
      secondsRemaining: row.seconds_remaining + row.expired_seconds,
      secondsReserved: row.seconds_reserved - row.expired_seconds,
    };
  }

  async findReservation(db: DatabaseClient, reservationId: string): Promise<ReservationRecord | undefined> {
    return (await db.creditReservation.findUnique({ where: { id: reservationId } })) ?? undefined;
  }

  async findReservationByIdempotencyKey(
    db: DatabaseClient,
    customerId: string,
    idempotencyKey: string,
  ): Promise<ReservationRecord | undefined> {
    const found = await db.creditReservation.findUnique({
      where: { customerId_idempotencyKey: { customerId, idempotencyKey } },
    });
    return found ?? undefined;
  }

  async countUnexpiredActive(db: DatabaseClient, customerId: string, now: Date): Promise<number> {
    return db.creditReservation.count({ where: { customerId, status: "ACTIVE", expiresAt: { gt: now } } });
  }

  async listExpiredActive(db: DatabaseClient, customerId: string, now: Date): Promise<ReservationRecord[]> {
    return db.creditReservation.findMany({
      where: { customerId, status: "ACTIVE", expiresAt: { lte: now } },
      orderBy: { seq: "asc" },
    });
  }

  /** Customers holding ACTIVE reservations past expiry, oldest expiry first. */
  async customersWithExpiredReservations(db: DatabaseClient, now: Date, limit: number): Promise<string[]> {
    const rows = await db.$queryRaw<{ customer_id: string }[]>`
      SELECT customer_id FROM credit_reservation
      WHERE status = 'ACTIVE' AND expires_at <= ${now}
      GROUP BY customer_id ORDER BY MIN(expires_at) LIMIT ${limit}`;
    return rows.map((row) => row.customer_id);
  }

  async createReservation(tx: Transaction, reservation: NewReservation): Promise<ReservationRecord> {
    return tx.creditReservation.create({ data: reservation });
  }

  async settleReservation(
    tx: Transaction,
    reservationId: string,
    settlement: ReservationSettlement,
  ): Promise<ReservationRecord> {
    return tx.creditReservation.update({ where: { id: reservationId }, data: settlement });
  }

  async appendLedger(tx: Transaction, entries: NewLedgerEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await tx.ledgerEntry.createMany({ data: entries });
  }

  async listReservations(
    db: DatabaseClient,
    customerId: string,
    status: ReservationStatus | undefined,
    page: PageRequest,
    now: Date,
  ): Promise<ReservationRecord[]> {
    return db.creditReservation.findMany({
      where: {
        customerId,
        ...(page.afterSeq === undefined ? {} : { seq: { lt: page.afterSeq } }),
        ...presentedStatusFilter(status, now),
      },
      orderBy: { seq: "desc" },
      take: page.first + 1,
    });
  }

  async listLedger(db: DatabaseClient, customerId: string, page: PageRequest): Promise<LedgerEntryRecord[]> {
    return db.ledgerEntry.findMany({
      where: { customerId, ...(page.afterSeq === undefined ? {} : { id: { lt: page.afterSeq } }) },
      orderBy: { id: "desc" },
      take: page.first + 1,
    });
  }
}

/** Filters on the status clients see, in which an ACTIVE reservation past expiry is EXPIRED. */
function presentedStatusFilter(status: ReservationStatus | undefined, now: Date) {
  switch (status) {
    case undefined:
      return {};
    case "ACTIVE":
      return { status: "ACTIVE" as const, expiresAt: { gt: now } };
    case "EXPIRED":
      return { OR: [{ status: "EXPIRED" as const }, { status: "ACTIVE" as const, expiresAt: { lte: now } }] };
    default:
      return { status };
  }
}
