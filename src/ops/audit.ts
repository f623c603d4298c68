// The database's invariants, checked from the outside: `npm run audit` prints this report and
// exits non-zero when anything is violated. Each check returns the rows that break it.
import type { Config } from "../config";
import type { Database } from "../platform/database";

export interface AuditCheck {
  name: string;
  violations: Record<string, unknown>[];
}

const violationLimit = 100;

export async function runAudit(database: Database, config: Config): Promise<AuditCheck[]> {
  const seats = config.tiers;
  const checks: [string, () => Promise<Record<string, unknown>[]>][] = [
    [
      "each customer's ledger deltas sum to the balance",
      () => database.$queryRaw`
        SELECT c.id AS customer_id, c.seconds_remaining, COALESCE(SUM(l.delta_seconds), 0)::bigint AS ledger_sum
        FROM customer c LEFT JOIN ledger_entry l ON l.customer_id = c.id
        GROUP BY c.id HAVING c.seconds_remaining <> COALESCE(SUM(l.delta_seconds), 0) LIMIT ${violationLimit}`,
    ],
    [
      "secondsReserved equals the sum of ACTIVE reservations",
      () => database.$queryRaw`
        SELECT c.id AS customer_id, c.seconds_reserved,
               COALESCE((SELECT SUM(r.reserved_seconds) FROM credit_reservation r WHERE r.customer_id = c.id AND r.status = 'ACTIVE'), 0)::bigint AS active_sum
        FROM customer c
        WHERE c.seconds_reserved <> COALESCE((SELECT SUM(r.reserved_seconds) FROM credit_reservation r WHERE r.customer_id = c.id AND r.status = 'ACTIVE'), 0)
        LIMIT ${violationLimit}`,
    ],
    [
      "no negative balance",
      () => database.$queryRaw`
        SELECT id AS customer_id, seconds_remaining, seconds_reserved FROM customer
        WHERE seconds_remaining < 0 OR seconds_reserved < 0 LIMIT ${violationLimit}`,
    ],
    [
      "each ledger entry's balanceAfter is the running sum",
      () => database.$queryRaw`
        SELECT id, customer_id, balance_after, running_sum FROM (
          SELECT id, customer_id, balance_after,
                 SUM(delta_seconds) OVER (PARTITION BY customer_id ORDER BY id) AS running_sum
          FROM ledger_entry) entries
        WHERE balance_after <> running_sum LIMIT ${violationLimit}`,
    ],
    [
      "one license per customer",
      () => database.$queryRaw`
        SELECT customer_id, count(*)::int AS licenses FROM license GROUP BY customer_id HAVING count(*) > 1 LIMIT ${violationLimit}`,
    ],
    [
      "no license with more active devices than seats",
      () => database.$queryRaw`
        SELECT l.id AS license_id, c.tier::text AS tier, count(d.id)::int AS seated
        FROM license l JOIN customer c ON c.id = l.customer_id JOIN device d ON d.license_id = l.id AND d.deactivated_at IS NULL
        GROUP BY l.id, c.tier
        HAVING count(d.id) > CASE c.tier::text WHEN 'STARTER' THEN ${seats.STARTER.maxDevices}::int
                                              WHEN 'PRO' THEN ${seats.PRO.maxDevices}::int
                                              ELSE ${seats.STUDIO.maxDevices}::int END
        LIMIT ${violationLimit}`,
    ],
    [
      "every processed Stripe payment has exactly one effect",
      () => database.$queryRaw`
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
        GROUP BY e.id, e.type HAVING count(p.key) <> 1 LIMIT ${violationLimit}`,
    ],
    [
      "every refund of a purchase that was applied is applied",
      () => database.$queryRaw`
        SELECT e.id AS event_id, e.status, e.last_error
        FROM stripe_event e
        WHERE e.type = 'charge.refunded' AND e.status <> 'PROCESSED'
          AND EXISTS (
            SELECT 1 FROM payment_effect p
            WHERE p.stripe_payment_intent_id = e.payload->'data'->'object'->>'payment_intent'
              AND p.key NOT LIKE 'refund:%' AND p.key NOT LIKE 'dispute:%')
        LIMIT ${violationLimit}`,
    ],
    [
      "every Stripe grant in the ledger has its payment effect",
      () => database.$queryRaw`
        SELECT g.customer_id, g.grants, COALESCE(p.effects, 0) AS effects FROM
          (SELECT customer_id, count(*)::int AS grants FROM ledger_entry
           WHERE kind = 'GRANT' AND actor LIKE 'stripe:%' GROUP BY customer_id) g
        LEFT JOIN
          (SELECT customer_id, count(*)::int AS effects FROM payment_effect
           WHERE key NOT LIKE 'refund:%' AND granted_seconds > 0 GROUP BY customer_id) p
        ON p.customer_id = g.customer_id
        WHERE g.grants <> COALESCE(p.effects, 0) LIMIT ${violationLimit}`,
    ],
  ];
  const results: AuditCheck[] = [];
  for (const [name, query] of checks) results.push({ name, violations: await query() });
  return results;
}

export function formatAudit(checks: AuditCheck[]): string {
  const lines = checks.map((check) =>
    check.violations.length === 0
      ? `ok    ${check.name}`
      : `FAIL  ${check.name}: ${check.violations.length}${check.violations.length >= violationLimit ? "+" : ""} violation(s)\n${check.violations
          .map((violation) => `        ${JSON.stringify(violation, (_key, value) => (typeof value === "bigint" ? value.toString() : value))}`)
          .join("\n")}`,
  );
  const failed = checks.filter((check) => check.violations.length > 0).length;
  return `${lines.join("\n")}\n${failed === 0 ? "all invariants hold" : `${failed} invariant(s) violated`}`;
}
