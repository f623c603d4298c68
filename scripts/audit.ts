// `npm run audit`: checks the database's invariants (DATABASE_URL, or the embedded database
// `npm start` uses) and exits 1 when any is violated.
import { loadConfig } from "../src/config";
import { formatAudit, runAudit } from "../src/ops/audit";
import { closeDatabase, createDatabase, databaseSettingsOf } from "../src/platform/database";
import { prepareDatabase } from "../src/platform/database-bootstrap";
import { createLogger } from "../src/platform/logger";

const auditPoolSize = 2;

async function main(): Promise<void> {
  const config = loadConfig();
  const prepared = await prepareDatabase(config, createLogger({ ...config, environment: "test" }));
  // One snapshot transaction of up to AUDIT_TIMEOUT_MS: its statements may run that long.
  const { timeouts } = config.database;
  const database = createDatabase(prepared.url, {
    ...databaseSettingsOf(config),
    poolSize: auditPoolSize,
    timeouts: { ...timeouts, statementMs: config.auditTimeoutMs, queryMs: config.auditTimeoutMs + timeouts.queryMs },
  });
  try {
    const checks = await runAudit(database, config);
    process.stdout.write(`${formatAudit(checks)}\n`);
    process.exitCode = checks.some((check) => check.violations.length > 0) ? 1 : 0;
  } finally {
    await closeDatabase(database);
    await prepared.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`audit failed to run: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
