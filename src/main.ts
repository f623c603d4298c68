// `npm start`: configuration, database, HTTP server, background workers; and on SIGTERM or
// SIGINT an orderly stop: stop accepting, drain requests, stop workers, close the database.
import type { Server } from "node:http";
import { buildApp } from "./app";
import { ConfigError, loadConfig } from "./config";
import { expirySweeper } from "./modules/credits/expiry-sweeper";
import { closeDatabase, createDatabase } from "./platform/database";
import { prepareDatabase } from "./platform/database-bootstrap";
import { createLogger } from "./platform/logger";
import { createServices } from "./services";

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  const prepared = await prepareDatabase(config, logger);
  const database = createDatabase(prepared.url, config.database.poolSize, config.transactions.maxWaitMs, (error) =>
    logger.warn({ err: error }, "a database connection was lost; the pool opens another when needed"),
  );
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
    logger.info({ port: config.http.port }, `Splice API listening on http://localhost:${config.http.port}/graphql`);
  });

  let stopping = false;
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
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError ? error.message : error instanceof Error ? error.stack : String(error);
  process.stderr.write(`Splice API failed to start: ${message}\n`);
  process.exit(1);
});
