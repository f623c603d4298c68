// Once per `npm test`: compile the server, start (or reach) PostgreSQL and build a migrated
// template database.
// Every test file then copies the template, which takes milliseconds instead of migrating.
import { createDatabase, dropDatabase, migrateDatabase, withDatabase } from "../../src/platform/database-admin";
import { startEmbeddedPostgres } from "../../src/platform/embedded-postgres";
import { buildServer } from "../../scripts/server-command";
import { embeddedTestDirectory, embeddedTestPort, serverUrlVariable, templateDatabaseName } from "./test-database";

export default async function globalSetup(): Promise<void> {
  // Tests start the server as `npm start` does: compiled, from dist/.
  buildServer();
  let serverUrl = process.env.TEST_DATABASE_URL;
  if (!serverUrl) {
    const cluster = await startEmbeddedPostgres({
      dataDirectory: embeddedTestDirectory,
      port: await embeddedTestPort(),
      user: "splice",
      password: "splice",
    });
    (globalThis as { spliceTestCluster?: unknown }).spliceTestCluster = cluster;
    serverUrl = cluster.urlFor("postgres");
  }
  const templateUrl = withDatabase(serverUrl, templateDatabaseName);
  await dropDatabase(templateUrl);
  await createDatabase(templateUrl);
  await migrateDatabase(templateUrl);
  process.env[serverUrlVariable] = serverUrl;
}
