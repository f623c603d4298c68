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

/** Asserts the ledger sums to the balance and reserved seconds match ACTIVE reservations. */
export async function expectConsistentLedger(sql: pg.Pool, customerId: string): Promise<StoredBalance> {
  const stored = await storedBalance(sql, customerId);
  expect(stored.secondsRemaining).toBeGreaterThanOrEqual(0);
  expect(stored.ledgerSumSeconds).toBe(stored.secondsRemaining);
  expect(stored.secondsReserved).toBe(stored.activeReservedSeconds);
  return stored;
}
