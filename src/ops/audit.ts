// `npm run audit`: every module's invariants, checked from the outside. Each module keeps its
// checks next to the rules they check; this file only gathers them.
import type { Config } from "../config";
import { billingInvariants } from "../modules/billing";
import { createLedgerReader, creditsInvariants } from "../modules/credits";
import { createCustomerDirectory } from "../modules/customers";
import { licensesInvariants } from "../modules/licenses";
import { runChecks, type AuditCheck } from "../platform/audit";
import type { Database } from "../platform/database";

export { formatAudit, type AuditCheck } from "../platform/audit";

export async function runAudit(database: Database, config: Config): Promise<AuditCheck[]> {
  const checks = [...creditsInvariants(), ...licensesInvariants(createCustomerDirectory(), config), ...billingInvariants(createLedgerReader())];
  return runChecks(database, checks, config.auditTimeoutMs);
}
