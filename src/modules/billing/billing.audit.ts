// The billing module's invariants, checked from the outside: its own tables, and the ledger's
// Stripe grants read through the credits module.
import { Prisma } from "../../generated/prisma/client";
import { z } from "zod";
import { column, selectRows, violationRow } from "../../platform/rows";
import { auditViolationLimit as limit, type InvariantCheck } from "../../platform/audit";
import type { LedgerReader } from "../credits";

const effectCountRow = z.object({ customer_id: column.uuid, effects: column.int });

export function billingInvariants(credits: LedgerReader): InvariantCheck[] {
  return [
    {
      name: "every processed Stripe payment has exactly one effect",
      violations: (db) =>
        selectRows(db, "billing.audit.oneEffectPerPayment", violationRow, Prisma.sql`
        SELECT e.id AS event_id, e.type, count(p.key)::int AS effects
        FROM stripe_event e
        LEFT JOIN payment_effect p ON p.key = CASE
          WHEN e.type LIKE 'checkout.session.%' THEN 'checkout_session:' || (e.payload->'data'->'object'->>'id')
          ELSE 'invoice:' || (e.payload->'data'->'object'->>'id') END
        WHERE e.status = 'PROCESSED'
          AND ((e.type IN ('checkout.session.completed', 'checkout.session.async_payment_succeeded')
                AND e.payload->'data'->'object'->>'mode' = 'payment'
                AND e.payload->'data'->'object'->>'payment_status' = 'paid')
               OR e.type = 'invoice.paid')
        GROUP BY e.id, e.type HAVING count(p.key) <> 1 LIMIT ${limit}`),
    },
    {
      name: "every refund of a purchase that was applied is applied",
      violations: (db) =>
        selectRows(db, "billing.audit.refundsOfAppliedPurchasesApplied", violationRow, Prisma.sql`
        SELECT e.id AS event_id, e.status, e.last_error
        FROM stripe_event e
        WHERE e.type = 'charge.refunded' AND e.status <> 'PROCESSED'
          AND EXISTS (
            SELECT 1 FROM payment_effect p
            WHERE p.stripe_payment_intent_id = e.payload->'data'->'object'->>'payment_intent'
              AND p.key NOT LIKE 'refund:%' AND p.key NOT LIKE 'dispute:%')
        LIMIT ${limit}`),
    },
    {
      name: "every Stripe grant in the ledger has its payment effect",
      violations: async (db) => {
        const grants = await credits.grantCountsByActorPrefix(db, "stripe:");
        const effects = await selectRows(db, "billing.audit.grantingEffects", effectCountRow, Prisma.sql`
          SELECT customer_id, count(*)::int AS effects FROM payment_effect
          WHERE key NOT LIKE 'refund:%' AND granted_seconds > 0 GROUP BY customer_id`);
        const effectCounts = new Map(effects.map((row) => [row.customer_id, row.effects]));
        const customerIds = new Set([...grants.keys(), ...effectCounts.keys()]);
        return [...customerIds]
          .filter((customerId) => (grants.get(customerId) ?? 0) !== (effectCounts.get(customerId) ?? 0))
          .slice(0, limit)
          .map((customerId) => ({ customer_id: customerId, grants: grants.get(customerId) ?? 0, effects: effectCounts.get(customerId) ?? 0 }));
      },
    },
  ];
}
