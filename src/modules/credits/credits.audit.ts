// The credits module's invariants, checked from the outside over its own tables.
import { Prisma } from "../../generated/prisma/client";
import { selectRows, violationRow } from "../../platform/rows";
import { auditViolationLimit as limit, type InvariantCheck } from "../../platform/audit";

export function creditsInvariants(): InvariantCheck[] {
  return [
    {
      name: "each customer's ledger deltas sum to the balance",
      violations: (db) =>
        selectRows(db, "credits.audit.ledgerSumsToBalance", violationRow, Prisma.sql`
        SELECT b.customer_id, b.seconds_remaining, COALESCE(SUM(l.delta_seconds), 0)::bigint AS ledger_sum
        FROM credit_balance b LEFT JOIN ledger_entry l ON l.customer_id = b.customer_id
        GROUP BY b.customer_id HAVING b.seconds_remaining <> COALESCE(SUM(l.delta_seconds), 0) LIMIT ${limit}`),
    },
    {
      name: "secondsReserved equals the sum of ACTIVE reservations",
      violations: (db) =>
        selectRows(db, "credits.audit.reservedMatchesActive", violationRow, Prisma.sql`
        SELECT b.customer_id, b.seconds_reserved, COALESCE(r.active_sum, 0)::bigint AS active_sum
        FROM credit_balance b
        LEFT JOIN (SELECT customer_id, SUM(reserved_seconds) AS active_sum FROM credit_reservation
                   WHERE status = 'ACTIVE' GROUP BY customer_id) r ON r.customer_id = b.customer_id
        WHERE b.seconds_reserved <> COALESCE(r.active_sum, 0) LIMIT ${limit}`),
    },
    {
      name: "no negative balance",
      violations: (db) =>
        selectRows(db, "credits.audit.noNegativeBalance", violationRow, Prisma.sql`
        SELECT customer_id, seconds_remaining, seconds_reserved FROM credit_balance
        WHERE seconds_remaining < 0 OR seconds_reserved < 0 LIMIT ${limit}`),
    },
    {
      name: "each ledger entry's balanceAfter is the running sum",
      violations: (db) =>
        selectRows(db, "credits.audit.balanceAfterIsRunningSum", violationRow, Prisma.sql`
        SELECT id, customer_id, balance_after, running_sum FROM (
          SELECT id, customer_id, balance_after,
                 SUM(delta_seconds) OVER (PARTITION BY customer_id ORDER BY id) AS running_sum
          FROM ledger_entry) entries
        WHERE balance_after <> running_sum LIMIT ${limit}`),
    },
  ];
}
