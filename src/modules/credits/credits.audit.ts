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
    {
      name: "each grant's parts sum to what it granted, none negative",
      violations: (db) =>
        selectRows(db, "credits.audit.grantPartsSumToGranted", violationRow, Prisma.sql`
        SELECT id, customer_id, granted_seconds, remaining_seconds, held_seconds, charged_seconds, expired_seconds, taken_back_seconds
        FROM credit_grant
        WHERE granted_seconds <> remaining_seconds + held_seconds + charged_seconds + expired_seconds + taken_back_seconds
           OR LEAST(remaining_seconds, held_seconds, charged_seconds, expired_seconds, taken_back_seconds) < 0 LIMIT ${limit}`),
    },
    {
      name: "each balance is the sum over the customer's grants",
      violations: (db) =>
        selectRows(db, "credits.audit.balanceIsSumOfGrants", violationRow, Prisma.sql`
        SELECT b.customer_id, b.seconds_remaining, b.seconds_reserved,
               COALESCE(SUM(g.remaining_seconds), 0)::bigint AS grants_remaining, COALESCE(SUM(g.held_seconds), 0)::bigint AS grants_held
        FROM credit_balance b LEFT JOIN credit_grant g ON g.customer_id = b.customer_id
        GROUP BY b.customer_id
        HAVING b.seconds_remaining <> COALESCE(SUM(g.remaining_seconds), 0) OR b.seconds_reserved <> COALESCE(SUM(g.held_seconds), 0)
        LIMIT ${limit}`),
    },
    {
      name: "each grant's ledger entries sum to its remaining seconds, past its ledger opening",
      violations: (db) =>
        selectRows(db, "credits.audit.grantLedgerSumsToRemaining", violationRow, Prisma.sql`
        SELECT g.id, g.customer_id, g.remaining_seconds, g.ledger_opening_seconds, COALESCE(l.moved, 0)::bigint AS ledger_sum
        FROM credit_grant g LEFT JOIN (SELECT grant_id, SUM(delta_seconds) AS moved FROM ledger_entry
                                       WHERE grant_id IS NOT NULL GROUP BY grant_id) l ON l.grant_id = g.id
        WHERE g.remaining_seconds - g.ledger_opening_seconds <> COALESCE(l.moved, 0) LIMIT ${limit}`),
    },
    {
      name: "each grant's expired and taken-back seconds are its GRANT_EXPIRED and REFUND or deduction entries",
      violations: (db) =>
        selectRows(db, "credits.audit.grantExpiredAndTakenBackMatchLedger", violationRow, Prisma.sql`
        SELECT g.id, g.customer_id, g.expired_seconds, g.taken_back_seconds, COALESCE(l.expired, 0)::bigint AS ledger_expired,
               COALESCE(l.taken_back, 0)::bigint AS ledger_taken_back
        FROM credit_grant g LEFT JOIN (
          SELECT grant_id,
                 -SUM(delta_seconds) FILTER (WHERE kind = 'GRANT_EXPIRED') AS expired,
                 -SUM(delta_seconds) FILTER (WHERE kind = 'REFUND' OR (kind = 'ADJUSTMENT' AND delta_seconds < 0)) AS taken_back
          FROM ledger_entry WHERE grant_id IS NOT NULL GROUP BY grant_id) l ON l.grant_id = g.id
        WHERE g.expired_seconds <> COALESCE(l.expired, 0) OR g.taken_back_seconds <> COALESCE(l.taken_back, 0) LIMIT ${limit}`),
    },
    {
      name: "each grant's held seconds are what ACTIVE reservations hold of it",
      violations: (db) =>
        selectRows(db, "credits.audit.grantHeldMatchesHolds", violationRow, Prisma.sql`
        SELECT g.id, g.customer_id, g.held_seconds, COALESCE(h.held, 0)::bigint AS active_holds
        FROM credit_grant g LEFT JOIN (
          SELECT h.grant_id, SUM(h.held_seconds) AS held FROM credit_reservation_hold h
          JOIN credit_reservation r ON r.id = h.reservation_id WHERE r.status = 'ACTIVE' GROUP BY h.grant_id) h ON h.grant_id = g.id
        WHERE g.held_seconds <> COALESCE(h.held, 0) LIMIT ${limit}`),
    },
    {
      name: "each reservation's holds sum to its reserved seconds, of its own customer's grants",
      violations: (db) =>
        selectRows(db, "credits.audit.reservationHoldsSumToReserved", violationRow, Prisma.sql`
        SELECT r.id, r.customer_id, r.reserved_seconds, COALESCE(SUM(h.held_seconds), 0)::bigint AS held,
               bool_and(g.customer_id = r.customer_id) AS own_grants
        FROM credit_reservation r
        LEFT JOIN credit_reservation_hold h ON h.reservation_id = r.id LEFT JOIN credit_grant g ON g.id = h.grant_id
        WHERE r.status = 'ACTIVE' OR h.reservation_id IS NOT NULL
        GROUP BY r.id
        HAVING r.reserved_seconds <> COALESCE(SUM(h.held_seconds), 0) OR NOT bool_and(g.customer_id = r.customer_id) LIMIT ${limit}`),
    },
    {
      name: "each ledger entry naming a grant is the grant's customer's",
      violations: (db) =>
        selectRows(db, "credits.audit.ledgerGrantIsOwn", violationRow, Prisma.sql`
        SELECT l.id, l.customer_id, g.customer_id AS grant_customer_id
        FROM ledger_entry l JOIN credit_grant g ON g.id = l.grant_id
        WHERE g.customer_id <> l.customer_id LIMIT ${limit}`),
    },
  ];
}
