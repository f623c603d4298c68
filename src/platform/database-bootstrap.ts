// Where the database comes from: DATABASE_URL when given, otherwise a real PostgreSQL
// embedded under .data/. Either way the committed migrations are applied before serving.
import type { Logger } from "pino";
import type { Config } from "../config";
import { createDatabase, migrateDatabase } from "./database-admin";
import { startEmbeddedPostgres } from "./embedded-postgres";

export interface PreparedDatabase {
  url: string;
  /** Stops the embedded PostgreSQL; nothing for an external one. */
  stop(): Promise<void>;
  /** The same, at once and synchronously, for a process that must exit now. */
  stopNow(): void;
}

const embeddedCredentials = { user: "splice", password: "splice" };

export async function prepareDatabase(config: Config, logger: Logger): Promise<PreparedDatabase> {
  if (config.database.url) {
    await migrateDatabase(config.database.url);
    logger.info("migrations applied to the database at DATABASE_URL");
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
    await migrateDatabase(url);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  logger.info({ directory, port, database: databaseName }, "embedded PostgreSQL started and migrated");
  return { url, stop: () => cluster.stop(), stopNow: () => cluster.stopNow() };
}
