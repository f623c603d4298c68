// Prometheus metrics at GET /metrics. Counters kept by the components themselves are read at
// scrape time, so nothing on a request's path waits for the metrics library.
import crypto from "node:crypto";
import type { Request, Response } from "express";
import { Counter, Registry, collectDefaultMetrics } from "prom-client";
import type { Config } from "../config";
import type { TransactionCounters } from "./database";

export function createMetricsRegistry(transactionCounters: TransactionCounters): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "splice_" });
  const fromCounter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  fromCounter("splice_transaction_attempts_total", "Serializable transaction attempts, first tries and retries", () => transactionCounters.attempts);
  fromCounter("splice_transaction_conflicts_total", "Serialization failures and deadlocks that caused a retry", () => transactionCounters.conflicts);
  fromCounter("splice_transaction_exhausted_total", "Transactions that ran out of attempts (answered 503)", () => transactionCounters.exhausted);
  fromCounter("splice_database_unavailable_total", "Transactions that failed because the database was unreachable", () => transactionCounters.unavailable);
  return registry;
}

/** GET /metrics: with METRICS_TOKEN set, only for that bearer token; without it, never in production. */
export function metricsHandler(registry: Registry, config: Config) {
  const expected = config.metrics.token ? Buffer.from(`Bearer ${config.metrics.token}`) : undefined;
  return async (request: Request, response: Response) => {
    if (!expected && config.environment === "production") {
      response.status(404).json({ error: "not found" });
      return;
    }
    if (expected) {
      const given = Buffer.from(request.header("authorization") ?? "");
      if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
        response.status(401).json({ error: "metrics token required" });
        return;
      }
    }
    response.setHeader("Content-Type", registry.contentType);
    response.send(await registry.metrics());
  };
}
