// A reservation as stored, and as clients see it: an ACTIVE reservation past its expiry is
// EXPIRED at once, before the sweeper has settled it.
export type ReservationStatus = "ACTIVE" | "CONFIRMED" | "RELEASED" | "EXPIRED";

export interface ReservationRecord {
  id: string;
  seq: bigint;
  customerId: string;
  endpoint: string;
  reservedSeconds: number;
  actualSeconds: number | null;
  chargedSeconds: number | null;
  unbilledSeconds: number | null;
  status: ReservationStatus;
  reason: string | null;
  idempotencyKey: string | null;
  createdAt: Date;
  expiresAt: Date;
  settledAt: Date | null;
  /**
   * Where the row was when read (its ctid), for the update that settles it: found by address,
   * it takes no Serializable predicate lock on an index page other customers insert into.
   */
  rowAddress: string;
}

export const expiryReason = "expired";

/** The expiry rule (grants.store.ts's pastExpiry is its SQL twin): ACTIVE, and its expiry has come. */
export function isPastExpiry(reservation: Pick<ReservationRecord, "status" | "expiresAt">, now: Date): boolean {
  return reservation.status === "ACTIVE" && reservation.expiresAt.getTime() <= now.getTime();
}

export function presentReservation(reservation: ReservationRecord, now: Date): ReservationRecord {
  if (!isPastExpiry(reservation, now)) return reservation;
  return { ...reservation, status: "EXPIRED", reason: expiryReason, settledAt: reservation.expiresAt };
}
