// The licenses module's invariants, checked from the outside: its own tables, and the owner's
// tier read through the customers module.
import type { Config } from "../../config";
import { Prisma } from "../../generated/prisma/client";
import type { Database } from "../../platform/database";
import { z } from "zod";
import { column, selectRows, violationRow } from "../../platform/rows";
import { auditViolationLimit as limit, type InvariantCheck } from "../../platform/audit";
import type { CustomerDirectory } from "../customers";

const crowdedRow = z.object({ license_id: column.uuid, customer_id: column.uuid, seated: column.int });

export function licensesInvariants(database: Database, customers: CustomerDirectory, config: Config): InvariantCheck[] {
  const fewestSeats = Math.min(...Object.values(config.tiers).map((tier) => tier.maxDevices));
  return [
    {
      name: "one license per customer",
      violations: () =>
        selectRows(database, "licenses.audit.oneLicensePerCustomer", violationRow, Prisma.sql`
        SELECT customer_id, count(*)::int AS licenses FROM license GROUP BY customer_id HAVING count(*) > 1 LIMIT ${limit}`),
    },
    {
      name: "no license with more active devices than seats",
      violations: async () => {
        // Only licenses over the smallest tier's seats can break it; their owners' tiers decide.
        const crowded = await selectRows(database, "licenses.audit.crowdedLicenses", crowdedRow, Prisma.sql`
          SELECT l.id AS license_id, l.customer_id, count(d.id)::int AS seated
          FROM license l JOIN device d ON d.license_id = l.id AND d.deactivated_at IS NULL
          GROUP BY l.id HAVING count(d.id) > ${fewestSeats}::int`);
        const violations: Record<string, unknown>[] = [];
        for (const license of crowded) {
          const owner = await customers.findById(database, license.customer_id);
          const seats = owner ? config.tiers[owner.tier].maxDevices : 0;
          if (license.seated > seats) violations.push({ license_id: license.license_id, tier: owner?.tier ?? null, seated: license.seated });
        }
        return violations.slice(0, limit);
      },
    },
  ];
}
