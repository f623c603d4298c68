// `npm start`: configuration, database, HTTP server, background workers, each registered with
// the Lifecycle as it comes up; on SIGTERM or SIGINT (or when npm is gone) an orderly stop:
// stop accepting, answer requests in flight, stop workers, close the pools, stop PostgreSQL.
// With WEB_CONCURRENCY > 1 this process prepares the database and runs that many servers as
// node:cluster workers on the same port (platform/workers.ts); each worker is this file again.
import cluster from "node:cluster";
import type { Server } from "node:http";
import { buildApp, type App } from "./app";
import { ConfigError, developmentSecrets, loadConfig, openWithoutProduction, secretsOf, type Config } from "./config";
import { expirySweeper } from "./modules/credits";
import { readOrCreateDevelopmentSigningKey } from "./modules/licenses";
import { closeDatabase, createDatabase, databaseSettingsOf } from "./platform/database";
import { MigrationsPendingError, prepareDatabase } from "./platform/database-bootstrap";
import { EmbeddedPostgresError } from "./platform/embedded-postgres";
import { Lifecycle } from "./platform/lifecycle";
import { WorkerSet } from "./platform/workers";
import { createLogger } from "./platform/logger";
import type { Logger } from "pino";
import { publishedSecretNames } from "./platform/published-secrets";
import { createServices } from "./services";

let lifecycle: Lifecycle | undefined;

async function main(): Promise<void> {
  const config = loadConfig();
  refusePublishedSecrets(config);
  const logger = createLogger(config);
  const owner = new Lifecycle(logger, config.shutdownTimeoutMs);
  lifecycle = owner;
  process.on("SIGTERM", (signal) => owner.requestStop(signal));
  process.on("SIGINT", (signal) => owner.requestStop(signal));
  stopWhenOrphaned(() => owner.requestStop("the npm process that started the server is gone"));

  // A worker uses the database its primary prepared (and owns): no migrations, nothing to stop.
  const workerDatabaseUrl = cluster.isWorker ? config.cluster.workerDatabaseUrl : undefined;
  const prepared = workerDatabaseUrl
    ? { url: workerDatabaseUrl, stop: async () => undefined, stopNow: () => undefined }
    : await prepareDatabase(config, logger);
  owner.own("PostgreSQL", () => prepared.stop(), () => prepared.stopNow());
  if (cluster.isPrimary && config.cluster.workers > 1) {
    await runWorkers(config, logger, owner, prepared.url);
    return;
  }
  // While stopping, PostgreSQL ending the last sessions is expected, not worth a warning.
  const database = createDatabase(prepared.url, databaseSettingsOf(config), (error) => {
    if (!owner.isStopping) logger.warn({ error: describeConnectionError(error) }, "a database connection was lost; the pool opens another when needed");
  });
  owner.own("database pool", () => closeDatabase(database));
  const services = createServices(config, prepared.url, database, logger, { licenseSigningKeyPems: licenseSigningKeyPems(config, logger) });
  // Imported now, so that a key that cannot sign stops the start instead of every activation.
  const signingKeys = await services.licenses.signingKeys();
  logger.info({ keyIds: signingKeys.map((key) => key.keyId) }, "license certificates: signing with the first key, publishing all");
  owner.own("customer lock sessions", () => services.customerSerializer.close());
  owner.own("mailer", () => services.mailer.close());
  owner.own("outbox worker", () => services.outboxWorker.stop());
  const sweeper = expirySweeper(services.credits, config.sweeper.intervalMs, logger);
  owner.own("expiry sweeper", () => sweeper.stop());
  const app = await buildApp({ config, database, services, logger });
  owner.own("GraphQL server", () => app.apollo.stop());
  const server = await listen(app, config);
  owner.own("HTTP server", () => closeHttpServer(server));

  if (config.sweeper.enabled) sweeper.start();
  if (config.outbox.enabled) services.outboxWorker.start();
  logger.info({ host: config.http.host, port: config.http.port }, `Splice API listening on http://${config.http.host}:${config.http.port}/graphql`);
  const open = openWithoutProduction(config);
  if (open.length > 0) logger.warn({ environment: config.environment, open }, `not production: ${open.join("; ")}`);
  owner.markStarted();
}

/** The primary of WEB_CONCURRENCY workers: it serves nothing itself. */
async function runWorkers(config: Config, logger: Logger, owner: Lifecycle, databaseUrl: string): Promise<void> {
  // Created here once, so that the workers read the same development key instead of racing to create it.
  licenseSigningKeyPems(config, logger);
  const workers = new WorkerSet(
    {
      workers: config.cluster.workers,
      startTimeoutMs: config.cluster.workerStartTimeoutMs,
      replacementsPerMinute: config.cluster.workerReplacementsPerMinute,
      stopTimeoutMs: config.shutdownTimeoutMs,
    },
    databaseUrl,
    logger,
    (reason) => {
      logger.error({ reason }, "workers keep failing: stopping");
      owner.requestStop(reason, 1);
    },
  );
  owner.own("workers", () => workers.stop());
  await workers.start();
  logger.info({ host: config.http.host, port: config.http.port, workers: config.cluster.workers }, `Splice API listening on http://${config.http.host}:${config.http.port}/graphql with ${config.cluster.workers} workers`);
  owner.markStarted();
}

function refusePublishedSecrets(config: Config): void {
  if (config.environment !== "production") return;
  const secrets = secretsOf(config);
  const defaults = Object.keys(secrets).filter((name) => developmentSecrets.includes(secrets[name] ?? ""));
  const published = [...new Set([...defaults, ...publishedSecretNames(secrets)])].sort();
  if (published.length === 0) return;
  throw new ConfigError(`invalid configuration: ${published.join(", ")} appear${published.length === 1 ? "s" : ""} in this repository; production needs secrets of its own`);
}

class ListenError extends Error {
  override readonly name = "ListenError";
}

/** Express 5 hands listen errors (port taken, no permission) to the callback. */
function listen(app: App, config: Config): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server: Server = app.express.listen(config.http.port, config.http.host, (error?: Error) => {
      if (error) reject(new ListenError(`could not listen on ${config.http.host}:${config.http.port}: ${error.message}`));
      else resolve(server);
    });
  });
}

/** Stops accepting, lets requests in flight finish, closes idle keep-alive connections. */
async function closeHttpServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await closed;
}

/** What a dropped connection's error says, without the client object pg attaches to it. */
function describeConnectionError(error: Error): { message: string; code?: string } {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? { message: error.message, code } : { message: error.message };
}

const parentPollIntervalMs = 500;

/**
 * Under `npm start` npm is the parent. npm 11 passes SIGINT and SIGTERM on, but when npm itself
 * is killed (kill -9, an out-of-memory kill) the server would run on as an orphan holding the
 * port and the database: a server whose parent changed stops as if it had been signalled. A
 * worker's parent is its primary, however the primary was started.
 */
function stopWhenOrphaned(stop: () => void): void {
  if (!process.env.npm_lifecycle_event && !cluster.isWorker) return;
  const parentPid = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parentPid) return;
    clearInterval(timer);
    stop();
  }, parentPollIntervalMs);
  timer.unref();
}

main().catch(async (error: unknown) => {
  // Whatever was started before the failure (PostgreSQL above all) is stopped before exiting.
  await lifecycle?.closeAll();
  const expected = error instanceof ConfigError || error instanceof EmbeddedPostgresError || error instanceof ListenError || error instanceof MigrationsPendingError;
  const message = expected ? error.message : error instanceof Error ? error.stack : String(error);
  process.stderr.write(`Splice API failed to start: ${message}\n`);
  process.exit(1);
});

/** Configured keys; outside production without any, one key generated once into a file. */
function licenseSigningKeyPems(config: Config, logger: Logger): readonly string[] {
  if (config.licenses.signingKeyPems.length > 0) return config.licenses.signingKeyPems;
  const file = config.licenses.developmentSigningKeyFile;
  const { pem, created } = readOrCreateDevelopmentSigningKey(file);
  logger.warn({ file, created }, "license certificates are signed with a development key (set LICENSE_SIGNING_KEYS in production)");
  return [pem];
}
