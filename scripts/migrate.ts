// `npm run migrate`: applies this release's migrations to DATABASE_URL (or the embedded database
// `npm start` uses) and exits; for rolling deploys, before instances started with
// MIGRATE_ON_START=false serve this release.
import { loadConfig } from "../src/config";
import { migrationState } from "../src/platform/database-admin";
import { prepareDatabase } from "../src/platform/database-bootstrap";
import { createLogger } from "../src/platform/logger";

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  const prepared = await prepareDatabase(config, logger, { migrate: "always" });
  try {
    const { pending } = await migrationState(prepared.url);
    if (pending.length > 0) throw new Error(`still pending after migrating: ${pending.join(", ")}`);
    process.stdout.write("migrations: the database has every migration of this release\n");
  } finally {
    await prepared.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`migrate failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
