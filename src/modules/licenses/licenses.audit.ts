// The licenses module's invariants, checked from the outside: its own tables, and the owner's
// tier read through the customers module.
import type { Config } from "../../config";
import { Prisma } from "../../generated/prisma/client";
import { z } from "zod";
import { column, selectRows, violationRow } from "../../platform/rows";
import { auditViolationLimit as limit, type InvariantCheck } from "../../platform/audit";
import type { CustomerDirectory } from "../customers";

const seatTierRow = z.object({ id: column.uuid, customer_id: column.uuid, tier: column.text });

export function licensesInvariants(customers: CustomerDirectory, config: Config): InvariantCheck[] {
  return [
    {
      name: "one license per customer",
      violations: (db) =>
        selectRows(db, "licenses.audit.oneLicensePerCustomer", violationRow, Prisma.sql`
        SELECT customer_id, count(*)::int AS licenses FROM license GROUP BY customer_id HAVING count(*) > 1 LIMIT ${limit}`),
    },
    {
      name: "no license with more active devices than its tier's seats",
      violations: (db) =>
        selectRows(db, "licenses.audit.devicesWithinSeats", violationRow, Prisma.sql`
        SELECT l.id AS license_id, l.tier::text AS tier, count(d.id)::int AS seated
        FROM license l JOIN device d ON d.license_id = l.id AND d.deactivated_at IS NULL
        GROUP BY l.id, l.tier
        HAVING count(d.id) > CASE l.tier::text WHEN 'STARTER' THEN ${config.tiers.STARTER.maxDevices}::int
                                               WHEN 'PRO' THEN ${config.tiers.PRO.maxDevices}::int
                                               ELSE ${config.tiers.STUDIO.maxDevices}::int END
        LIMIT ${limit}`),
    },
    {
      name: "each license's seat tier is its owner's tier",
      violations: async (db) => {
        const licenses = await selectRows(db, "licenses.audit.seatTiers", seatTierRow, Prisma.sql`SELECT id, customer_id, tier::text AS tier FROM license`);
        const violations: Record<string, unknown>[] = [];
        for (const license of licenses) {
          const owner = await customers.findById(db, license.customer_id);
          if (owner?.tier !== license.tier) violations.push({ license_id: license.id, license_tier: license.tier, owner_tier: owner?.tier ?? null });
          if (violations.length >= limit) break;
        }
        return violations;
      },
    },
  ];
}
