// Stored-state checks that every money test ends with: the ledger explains the balance.
import type pg from "pg";

export interface StoredBalance {
  secondsRemaining: number;
  secondsReserved: number;
  ledgerSumSeconds: number;
  activeReservedSeconds: number;
}

export async function storedBalance(sql: pg.Pool, customerId: string): Promise<StoredBalance> {
  const result = await sql.query(
    `SELECT b.seconds_remaining, b.seconds_reserved,
            (SELECT COALESCE(SUM(delta_seconds), 0)::int FROM ledger_entry WHERE customer_id = b.customer_id) AS ledger_sum,
            (SELECT COALESCE(SUM(reserved_seconds), 0)::int FROM credit_reservation
              WHERE customer_id = b.customer_id AND status = 'ACTIVE') AS active_reserved
     FROM credit_balance b WHERE b.customer_id = $1`,
    [customerId],
  );
  const row = result.rows[0];
  return {
    secondsRemaining: row.seconds_remaining,
    secondsReserved: row.seconds_reserved,
    ledgerSumSeconds: row.ledger_sum,
    activeReservedSeconds: row.active_reserved,
  };
}

export interface StoredGrant {
  id: string;
  granted: number;
  remaining: number;
  held: number;
  charged: number;
  expired: number;
  takenBack: number;
  ledgerOpening: number;
  ledgerSum: number;
  activeHeld: number;
}

export async function storedGrants(sql: pg.Pool, customerId: string): Promise<StoredGrant[]> {
  const result = await sql.query(
    `SELECT g.id, g.granted_seconds AS granted, g.remaining_seconds AS remaining, g.held_seconds AS held, g.charged_seconds AS charged,
            g.expired_seconds AS expired, g.taken_back_seconds AS "takenBack", g.ledger_opening_seconds AS "ledgerOpening",
            (SELECT COALESCE(SUM(delta_seconds), 0)::int FROM ledger_entry WHERE grant_id = g.id) AS "ledgerSum",
            (SELECT COALESCE(SUM(h.held_seconds), 0)::int FROM credit_reservation_hold h JOIN credit_reservation r ON r.id = h.reservation_id
              WHERE h.grant_id = g.id AND r.status = 'ACTIVE') AS "activeHeld"
     FROM credit_grant g WHERE g.customer_id = $1 ORDER BY g.seq`,
    [customerId],
  );
  return result.rows;
}

/**
 * Asserts the ledger sums to the balance, reserved seconds match ACTIVE reservations, and per
 * grant: its parts sum to what it granted, its ledger entries to its remaining seconds, its
 * held seconds to what ACTIVE reservations hold of it; and the grants sum to the balance.
 */
export async function expectConsistentLedger(sql: pg.Pool, customerId: string): Promise<StoredBalance> {
  const stored = await storedBalance(sql, customerId);
  expect(stored.secondsRemaining).toBeGreaterThanOrEqual(0);
  expect(stored.ledgerSumSeconds).toBe(stored.secondsRemaining);
  expect(stored.secondsReserved).toBe(stored.activeReservedSeconds);
  const grants = await storedGrants(sql, customerId);
  for (const grant of grants) {
    expect({ id: grant.id, parts: grant.remaining + grant.held + grant.charged + grant.expired + grant.takenBack }).toEqual({ id: grant.id, parts: grant.granted });
    expect({ id: grant.id, ledger: grant.ledgerSum, held: grant.activeHeld }).toEqual({ id: grant.id, ledger: grant.remaining - grant.ledgerOpening, held: grant.held });
  }
  expect(grants.reduce((sum, grant) => sum + grant.remaining, 0)).toBe(stored.secondsRemaining);
  expect(grants.reduce((sum, grant) => sum + grant.held, 0)).toBe(stored.secondsReserved);
  return stored;
}
