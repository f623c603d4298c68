// `npm start`: configuration, database, HTTP server, background workers; and on SIGTERM or
// SIGINT an orderly stop: stop accepting, drain requests, stop workers, close the database.
import type { Server } from "node:http";
import { buildApp } from "./app";
import { ConfigError, loadConfig, openWithoutProduction, secretsOf } from "./config";
import { expirySweeper } from "./modules/credits/expiry-sweeper";
import { closeDatabase, createDatabase } from "./platform/database";
import { prepareDatabase } from "./platform/database-bootstrap";
import { EmbeddedPostgresError } from "./platform/embedded-postgres";
import { publishedSecretNames } from "./platform/published-secrets";
import { createLogger } from "./platform/logger";
import { createServices } from "./services";

async function main(): Promise<void> {
  const config = loadConfig();
  if (config.environment === "production") {
    const published = publishedSecretNames(secretsOf(config));
    if (published.length > 0) throw new ConfigError(`invalid configuration: ${published.join(", ")} appear${published.length === 1 ? "s" : ""} in this repository; production needs secrets of its own`);
  }
  const logger = createLogger(config);
  const open = openWithoutProduction(config);
  const prepared = await prepareDatabase(config, logger);
  let stopping = false;
  // While stopping, PostgreSQL ending the last sessions is expected, not worth a warning.
  const database = createDatabase(prepared.url, config.database.poolSize, config.transactions.maxWaitMs, (error) => {
    if (!stopping) logger.warn({ error: describeConnectionError(error) }, "a database connection was lost; the pool opens another when needed");
  });
  const services = createServices(config, prepared.url, database, logger);
  const app = await buildApp({ config, database, services, logger });
  const sweeper = expirySweeper(services.credits, config.sweeper.intervalMs, logger);

  const server: Server = app.express.listen(config.http.port, config.http.host, (error?: Error) => {
    if (error) {
      // Express 5 hands listen errors (port taken, no permission) to this callback.
      process.stderr.write(`Splice API could not listen on ${config.http.host}:${config.http.port}: ${error.message}\n`);
      void stop("listen error", 1);
      return;
    }
    if (config.sweeper.enabled) sweeper.start();
    if (config.outbox.enabled) services.outboxWorker.start();
    logger.info({ host: config.http.host, port: config.http.port }, `Splice API listening on http://${config.http.host}:${config.http.port}/graphql`);
    if (open.length > 0) logger.warn({ environment: config.environment, open }, `not production: ${open.join("; ")}`);
  });

  const stop = async (reason: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, "shutting down");
    const deadline = setTimeout(() => {
      logger.error("shutdown timed out; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await closed;
    await app.apollo.stop();
    await sweeper.stop();
    await services.outboxWorker.stop();
    services.mailer.close();
    await services.customerSerializer.close();
    await closeDatabase(database);
    await prepared.stop();
    logger.info("stopped");
    process.exit(exitCode);
  };
  process.on("SIGTERM", (signal) => void stop(signal));
  process.on("SIGINT", (signal) => void stop(signal));
  stopWhenOrphaned(() => void stop("the npm process that started the server is gone"));
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
 * port and the database: a server whose parent changed stops as if it had been signalled.
 */
function stopWhenOrphaned(stop: () => void): void {
  if (!process.env.npm_lifecycle_event) return;
  const parentPid = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parentPid) return;
    clearInterval(timer);
    stop();
  }, parentPollIntervalMs);
  timer.unref();
}

main().catch((error: unknown) => {
  const expected = error instanceof ConfigError || error instanceof EmbeddedPostgresError;
  const message = expected ? error.message : error instanceof Error ? error.stack : String(error);
  process.stderr.write(`Splice API failed to start: ${message}\n`);
  process.exit(1);
});
