// Where the database comes from: DATABASE_URL when given, otherwise a real PostgreSQL
// embedded under .data/. Either way the committed migrations are in place before serving:
// applied at start when some are missing (MIGRATE_ON_START, the default), or, for rolling
// deploys that run `npm run migrate` as their own step, checked and the start refused.
import type { Logger } from "pino";
import type { Config } from "../config";
import { createDatabase, migrateDatabase, migrationState } from "./database-admin";
import { startEmbeddedPostgres } from "./embedded-postgres";

export interface PreparedDatabase {
  url: string;
  /** Stops the embedded PostgreSQL; nothing for an external one. */
  stop(): Promise<void>;
  /** The same, at once and synchronously, for a process that must exit now. */
  stopNow(): void;
}

const embeddedCredentials = { user: "splice", password: "splice" };

/** MIGRATE_ON_START=false and the database lacks migrations of this release. */
export class MigrationsPendingError extends Error {
  override readonly name = "MigrationsPendingError";

  constructor(pending: string[]) {
    super(`the database lacks ${pending.length} migration${pending.length === 1 ? "" : "s"} of this release (${pending.join(", ")}): run \`npm run migrate\` first, or start with MIGRATE_ON_START=true`);
  }
}

/**
 * Brings the schema up to this release (or refuses to), as configured. The check is one query
 * (milliseconds); `prisma migrate deploy` is a child process of seconds, run only when some
 * migration is missing, so a restart on an up-to-date database does not pay for it.
 */
async function ensureMigrated(url: string, config: Config, logger: Logger): Promise<void> {
  const { pending, changed } = await migrationState(url);
  if (changed.length > 0) logger.warn({ changed }, "migrations applied from another text than the committed one (not applied again)");
  if (pending.length === 0) return;
  if (!config.database.migrateOnStart) throw new MigrationsPendingError(pending);
  logger.info({ pending }, "running prisma migrate deploy");
  await migrateDatabase(url);
}

export async function prepareDatabase(config: Config, logger: Logger, options: { migrate?: "as-configured" | "always" } = {}): Promise<PreparedDatabase> {
  const migrationConfig = options.migrate === "always" ? { ...config, database: { ...config.database, migrateOnStart: true } } : config;
  if (config.database.url) {
    await ensureMigrated(config.database.url, migrationConfig, logger);
    return { url: config.database.url, stop: async () => undefined, stopNow: () => undefined };
  }
  const { directory, port, databaseName } = config.database.embedded;
  const cluster = await startEmbeddedPostgres({
    dataDirectory: directory,
    port,
    ...embeddedCredentials,
    onLog: (line) => logger.debug({ postgres: line }, "embedded PostgreSQL"),
    onNotice: (message) => logger.warn({ directory }, message),
  });
  const url = cluster.urlFor(databaseName);
  try {
    await createDatabase(url);
    await ensureMigrated(url, migrationConfig, logger);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  logger.info({ directory, port, database: databaseName }, "embedded PostgreSQL started");
  return { url, stop: () => cluster.stop(), stopNow: () => cluster.stopNow() };
}
