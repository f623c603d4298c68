// Prometheus metrics at GET /metrics. Counters the components keep themselves, and counts the
// database already has, are read at scrape time; request and operation durations are observed
// as they happen. Label values come from fixed sets (routes, schema fields, codes), never from
// what clients send.
import crypto from "node:crypto";
import type { ApolloServerPlugin } from "@apollo/server";
import type { NextFunction, Request, Response } from "express";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Config } from "../config";
import type { Logger } from "pino";
import type { CustomerSerializer } from "./customer-serializer";
import type { Database, TransactionCounters } from "./database";
import type { OutboxStore } from "./outbox/outbox.store";
import type { OutboxWorker } from "./outbox/outbox.worker";

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<"route" | "method" | "status">;
  operationDuration: Histogram<"operation" | "outcome">;
  unavailableResponses: Counter<"route">;
}

const knownRoutes = new Set(["/graphql", "/webhooks/stripe", "/.well-known/license-keys.json", "/healthz", "/readyz", "/metrics"]);

/** What the metrics read: platform parts, and the modules' counts (wired in app.ts). */
export interface MetricSources {
  transactions: TransactionCounters;
  lockSessions: Pick<CustomerSerializer, "lostSessions" | "sessionCounts" | "lockCounters">;
  outboxWorker: Pick<OutboxWorker, "counters">;
  outbox: Pick<OutboxStore, "pendingCount">;
  activationOutcomes: ReadonlyMap<string, number>;
  reservationCounts(): Promise<{ status: string; count: number }[]>;
  stripeEventCounts(): Promise<{ type: string; status: string; count: number }[]>;
}

export function createMetrics(sources: MetricSources, database: Database, logger: Logger): Metrics {
  const registry = new Registry();
  // Counts read from the database are skipped while it is unreachable, so that /metrics keeps
  // answering with everything else (the outage itself among it).
  const collectFailures = new Counter({
    name: "splice_metrics_collect_failures_total",
    help: "Metrics left out of a scrape because the database did not answer",
    registers: [registry],
  });
  const fromDatabase = async (read: () => Promise<void>) => {
    try {
      await read();
    } catch (error) {
      collectFailures.inc();
      logger.debug({ err: error }, "metrics: a database count was skipped");
    }
  };
  collectDefaultMetrics({ register: registry, prefix: "splice_" });
  // Which process answered: with WEB_CONCURRENCY workers each has its own counters.
  new Gauge({ name: "splice_process_info", help: "This process: 1, labelled with its pid", labelNames: ["pid"], registers: [registry] }).set({ pid: String(process.pid) }, 1);
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
  const counters = sources.transactions;
  fromCounter("splice_transaction_attempts_total", "Serializable transaction attempts, first tries and retries", () => counters.attempts);
  fromCounter("splice_transaction_conflicts_total", "Serialization failures and deadlocks that caused a retry", () => counters.conflicts);
  fromCounter("splice_transaction_exhausted_total", "Transactions that ran out of attempts (answered 503)", () => counters.exhausted);
  fromCounter("splice_database_unavailable_total", "Transactions that failed because the database was unreachable", () => counters.unavailable);
  fromCounter("splice_database_connection_errors_total", "Errors reported by pooled database connections (restart, failover, killed backend; one loss may report twice)", () => database.health.connectionErrors);
  fromCounter("splice_database_lock_sessions_lost_total", "Customer lock sessions the database dropped", () => sources.lockSessions.lostSessions);
  fromCounter("splice_customer_locked_retries_total", "Attempts that conflicted and were tried again under the customer's advisory lock", () => sources.lockSessions.lockCounters.retriedUnderLock);
  fromCounter("splice_customer_locked_first_total", "Attempts that took a contended customer's advisory lock before their transaction", () => sources.lockSessions.lockCounters.lockedFirst);
  fromCounter("splice_outbox_delivered_total", "Outbox jobs done", () => sources.outboxWorker.counters.succeeded);
  fromCounter("splice_outbox_failures_total", "Failed outbox attempts (email, Stripe)", () => sources.outboxWorker.counters.failed);
  fromCounter("splice_outbox_dead_total", "Outbox jobs given up after their last attempt", () => sources.outboxWorker.counters.dead);

  new Counter({
    name: "splice_activations_total",
    help: "License activations by outcome",
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [outcome, count] of sources.activationOutcomes) this.inc({ outcome }, count);
    },
  });
  // The pool gauges are registered before the counts read from the database: a scrape collects
  // in registration order, so they describe the service's own load, not the scrape's queries.
  new Gauge({
    name: "splice_database_pool_connections",
    help: "Database pool connections by state",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      this.set({ state: "total" }, database.pool.totalCount);
      this.set({ state: "idle" }, database.pool.idleCount);
      this.set({ state: "waiting_clients" }, database.pool.waitingCount);
    },
  });
  new Gauge({
    name: "splice_database_lock_sessions",
    help: "Sessions holding or waiting to hold customers' advisory locks, by state",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const sessions = sources.lockSessions.sessionCounts;
      this.set({ state: "total" }, sessions.total);
      this.set({ state: "idle" }, sessions.idle);
      this.set({ state: "waiting_clients" }, sessions.waiting);
    },
  });
  new Gauge({
    name: "splice_reservations",
    help: "Reservations by stored status",
    labelNames: ["status"],
    registers: [registry],
    async collect() {
      this.reset();
      await fromDatabase(async () => {
        for (const row of await sources.reservationCounts()) this.set({ status: row.status }, row.count);
      });
    },
  });
  new Gauge({
    name: "splice_stripe_events",
    help: "Received Stripe webhook events by type and status",
    labelNames: ["type", "status"],
    registers: [registry],
    async collect() {
      this.reset();
      await fromDatabase(async () => {
        for (const row of await sources.stripeEventCounts()) this.set({ type: row.type, status: row.status }, row.count);
      });
    },
  });
  new Gauge({
    name: "splice_outbox_backlog",
    help: "Outbox jobs waiting to be done",
    registers: [registry],
    async collect() {
      this.reset();
      await fromDatabase(async () => this.set(await sources.outbox.pendingCount(database)));
    },
  });
  const unavailableResponses = new Counter({
    name: "splice_unavailable_responses_total",
    help: "Answers with HTTP 503 (database unreachable, retries exhausted)",
    labelNames: ["route"],
    registers: [registry],
  });

  const httpDuration = new Histogram({
    name: "splice_http_request_duration_seconds",
    help: "HTTP request durations",
    labelNames: ["route", "method", "status"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const operationDuration = new Histogram({
    name: "splice_graphql_operation_duration_seconds",
    help: "GraphQL operation durations by root field and outcome",
    labelNames: ["operation", "outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return { registry, httpDuration, operationDuration, unavailableResponses };
}

export function httpMetricsMiddleware(metrics: Metrics) {
  return (request: Request, response: Response, next: NextFunction) => {
    const end = metrics.httpDuration.startTimer();
    response.on("finish", () => {
      // request.path is relative to the router's mount point by now; the original URL is not.
      const path = request.originalUrl.split("?")[0] ?? "";
      const route = knownRoutes.has(path) ? path : "other";
      end({ route, method: request.method, status: String(response.statusCode) });
      if (response.statusCode === 503) metrics.unavailableResponses.inc({ route });
    });
    next();
  };
}

/** Times each operation, labelled by its first root field (a name from the schema). */
export function operationMetricsPlugin(metrics: Metrics): ApolloServerPlugin {
  return {
    async requestDidStart() {
      const end = metrics.operationDuration.startTimer();
      return {
        async willSendResponse({ operation, response }) {
          const firstField = operation?.selectionSet.selections.find((selection) => selection.kind === "Field");
          const name = firstField && firstField.kind === "Field" ? `${operation!.operation}:${firstField.name.value}` : "unparsed";
          const errors = response.body.kind === "single" ? response.body.singleResult.errors ?? [] : [];
          end({ operation: name, outcome: errors.length === 0 ? "ok" : String(errors[0]?.extensions?.code ?? "error") });
        },
      };
    },
  };
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
