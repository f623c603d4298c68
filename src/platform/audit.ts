// Invariant checks run from the outside (`npm run audit`): each module contributes the checks
// of the invariants it keeps, next to them. A check returns the rows that break it. All checks
// read one snapshot (one REPEATABLE READ, read-only transaction), so traffic running meanwhile
// cannot make two tables disagree in the report.
import { Prisma } from "../generated/prisma/client";
import type { Database, DatabaseClient } from "./database";

export interface InvariantCheck {
  name: string;
  violations(db: DatabaseClient): Promise<Record<string, unknown>[]>;
}

export interface AuditCheck {
  name: string;
  violations: Record<string, unknown>[];
}

/** At most this many violating rows are reported per check. */
export const auditViolationLimit = 100;

export async function runChecks(database: Database, checks: InvariantCheck[], timeoutMs: number): Promise<AuditCheck[]> {
  return database.$transaction(
    async (tx) => {
      await tx.$executeRaw`SET TRANSACTION READ ONLY`;
      const results: AuditCheck[] = [];
      for (const check of checks) results.push({ name: check.name, violations: await check.violations(tx) });
      return results;
    },
    { isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead, timeout: timeoutMs, maxWait: timeoutMs },
  );
}

export function formatAudit(checks: AuditCheck[]): string {
  const lines = checks.map((check) =>
    check.violations.length === 0
      ? `ok    ${check.name}`
      : `FAIL  ${check.name}: ${check.violations.length}${check.violations.length >= auditViolationLimit ? "+" : ""} violation(s)\n${check.violations
          .map((violation) => `        ${JSON.stringify(violation, (_key, value) => (typeof value === "bigint" ? value.toString() : value))}`)
          .join("\n")}`,
  );
  const failed = checks.filter((check) => check.violations.length > 0).length;
  return `${lines.join("\n")}\n${failed === 0 ? "all invariants hold" : `${failed} invariant(s) violated`}`;
}
