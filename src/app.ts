// The HTTP application: security headers, request ids and logs, metrics, health probes, the
// Stripe webhook route (before any JSON parser: Stripe signs the raw bytes), the staff console
// and the GraphQL endpoint.
import crypto from "node:crypto";
import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { expressMiddleware } from "@as-integrations/express5";
import cors from "cors";
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import helmet from "helmet";
import type { Logger } from "pino";
import { pinoHttp } from "pino-http";
import type { Config } from "./config";
import type { RequestContext } from "./context";
import { stripeWebhookRouter } from "./modules/billing";
import { licenseKeysRouter } from "./modules/licenses";
import { actorOf, bearerToken, IdentityProviderCoolingDownError, IdentityProviderUnavailableError, isJwtShaped, TokenVerifier, type Caller } from "./platform/auth";
import { isDatabaseUnavailable, pingDatabase, type Database } from "./platform/database";
import { withDeadline } from "./platform/deadline";
import { createErrorFormatter, httpStatusPlugin, isUnavailable, serviceUnavailableError } from "./platform/errors";
import { controlCharacterPolicy, introspectionPolicy, nestingLimits, queryLimits } from "./platform/graphql-limits";
import { createMetrics, httpMetricsMiddleware, metricsHandler, operationMetricsPlugin } from "./platform/metrics";
import { playgroundMiddleware } from "./platform/playground";
import { buildSchema } from "./schema";
import type { Services } from "./services";

export interface AppDependencies {
  config: Config;
  database: Database;
  services: Services;
  logger: Logger;
}

export interface App {
  express: Express;
  apollo: ApolloServer<RequestContext>;
}

const graphqlBodyLimit = "256kb";
const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/;

export async function buildApp(deps: AppDependencies): Promise<App> {
  const { config, logger } = deps;
  const { services } = deps;
  const metrics = createMetrics(
    {
      transactions: services.transactor.counters,
      lockSessions: services.customerSerializer,
      outboxWorker: services.outboxWorker,
      outbox: services.outbox,
      activationOutcomes: services.licenses.activationOutcomes,
      reservationCounts: () => services.credits.reservationCounts(),
      stripeEventCounts: () => services.webhooks.eventCounts(),
    },
    deps.database,
    logger,
  );
  const limits = queryLimits(config);
  const tokens = new TokenVerifier(config.auth);
  const apollo = new ApolloServer<RequestContext>({
    schema: buildSchema(),
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    allowBatchedHttpRequests: limits.allowBatchedHttpRequests,
    validationRules: limits.validationRules,
    parseOptions: limits.parseOptions,
    introspection: true,
    formatError: createErrorFormatter(
      {
        unexpected: (error) => logger.error({ err: error }, "unexpected error in a GraphQL operation"),
        // Expected during an outage and answered 503: a warning, not an error that pages someone.
        unavailable: (error) => logger.warn({ err: error }, "a GraphQL operation could not reach the database"),
      },
      config.transactions.unavailableRetryAfterSeconds,
    ),
    plugins: [
      ...limits.plugins,
      introspectionPolicy(config),
      controlCharacterPolicy,
      httpStatusPlugin,
      operationMetricsPlugin(metrics),
      outcomeLoggingPlugin,
      ApolloServerPluginLandingPageDisabled(),
    ],
  });
  await apollo.start();

  const app = express();
  app.disable("x-powered-by");
  if (config.trustProxy) app.set("trust proxy", config.trustProxy);
  app.use((request: Request, response: Response, next: NextFunction) => {
    const given = request.header("x-request-id");
    const requestId = given && requestIdPattern.test(given) ? given : crypto.randomUUID();
    response.locals.requestId = requestId;
    response.locals.logFields = {};
    response.setHeader("X-Request-Id", requestId);
    next();
  });
  app.use(
    pinoHttp({
      logger,
      genReqId: (_request, response) => String(response.locals.requestId),
      customProps: (_request, response) => ({ ...(response.locals.logFields as object) }),
      // Bodies are never logged; of the headers only these, so tokens and signatures stay out.
      serializers: {
        req: (request: { id: unknown; method: string; url: string }) => ({ id: request.id, method: request.method, url: request.url.split("?")[0] }),
        res: (response: { statusCode: number }) => ({ statusCode: response.statusCode }),
      },
      autoLogging: { ignore: (request) => request.url === "/healthz" || request.url === "/metrics" },
    }),
  );
  app.use(helmet());
  app.use(httpMetricsMiddleware(metrics));

  app.use(stripeWebhookRouter(deps.services.webhooks, { maxBytes: config.stripe.webhookMaxBytes, deadlineMs: config.transactions.timeoutMs }));
  app.use(licenseKeysRouter(deps.services.licenses));

  app.get("/healthz", (_request, response) => {
    response.json({ status: "ok" });
  });
  app.get("/readyz", async (_request, response) => {
    try {
      await pingDatabase(deps.database);
      response.json({ status: "ready" });
    } catch (error) {
      logger.warn({ err: error }, "readiness check failed");
      response.setHeader("Retry-After", String(config.transactions.unavailableRetryAfterSeconds));
      response.status(503).json({ status: "database unreachable" });
    }
  });
  app.get("/metrics", metricsHandler(metrics.registry, config));

  app.use(
    "/graphql",
    cors({
      origin: config.dashboard.origins,
      methods: ["GET", "POST"],
      allowedHeaders: ["content-type", "authorization", "x-request-id", "apollo-require-preflight"],
      // Not CORS-safelisted, so hidden from browser code unless exposed: support asks for the
      // request id, and a client backing off reads Retry-After.
      exposedHeaders: ["x-request-id", "retry-after"],
      maxAge: 600,
    }),
    playgroundMiddleware(config.consoleEnabled),
    express.json({ limit: graphqlBodyLimit }),
    nestingLimits(config.graphql),
    withinDeadline(config.transactions.timeoutMs, expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        const caller = await identifyCaller(deps, tokens, req.header("authorization"));
        Object.assign(res.locals.logFields as object, { caller: actorOf(caller), callerRole: caller.kind });
        return {
          caller,
          services: deps.services,
          requestId: String(res.locals.requestId),
          clientAddress: req.ip ?? req.socket.remoteAddress ?? "unknown",
          logFields: res.locals.logFields as Record<string, unknown>,
        };
      },
    })),
  );

  app.use((_request: Request, response: Response) => {
    response.status(404).json({ error: "not found" });
  });
  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    const status = httpStatusOfBodyError(error);
    // Any route: a database that cannot answer is a 503 to retry, as in GraphQL. (A client that
    // aborted its upload carries a socket code too: the body parser's 4xx comes first.)
    if (status === 500 && isUnavailable(error)) {
      logger.warn({ err: error }, "an HTTP route could not reach the database");
      response.setHeader("Retry-After", String(config.transactions.unavailableRetryAfterSeconds));
      response.status(503).json({ error: "service temporarily unavailable, retry later" });
      return;
    }
    if (status === 500) logger.error({ err: error }, "unhandled error in an HTTP route");
    response.status(status).json({ error: status === 500 ? "internal server error" : status === 413 ? "body too large" : "bad request" });
  });
  return { express: app, apollo };
}

/**
 * Runs a handler with the request's deadline for waiting on the database (platform/deadline.ts),
 * once the body has been read: body parsers call `next` from the socket's events, outside any
 * context set before them.
 */
function withinDeadline(budgetMs: number, handler: RequestHandler): RequestHandler {
  return (request, response, next) => withDeadline(budgetMs, () => handler(request, response, next));
}

/** Adds the GraphQL operation and its outcome to the request's log line. */
const outcomeLoggingPlugin: ApolloServerPlugin<RequestContext> = {
  async requestDidStart() {
    return {
      async willSendResponse({ operationName, response, contextValue }) {
        const errors = response.body.kind === "single" ? response.body.singleResult.errors ?? [] : [];
        Object.assign(contextValue.logFields, {
          operation: operationName ?? "anonymous",
          outcome: errors.length === 0 ? "ok" : errors.map((error) => String(error.extensions?.code ?? "error")).join(","),
        });
      },
    };
  },
};

async function identifyCaller(deps: AppDependencies, tokens: TokenVerifier, authorizationHeader: string | undefined): Promise<Caller> {
  if (authorizationHeader === undefined) return { kind: "anonymous" };
  const token = bearerToken(authorizationHeader);
  if (!token) return { kind: "rejected", reason: "expected 'Authorization: Bearer <token>'" };
  const retryAfterSeconds = deps.config.transactions.unavailableRetryAfterSeconds;
  // The caller is identified before the operation runs, outside the error translator: an
  // identity provider or database that cannot answer makes the request a 503, never a 401.
  if (isJwtShaped(token)) {
    try {
      return await tokens.verify(token);
    } catch (error) {
      if (error instanceof IdentityProviderCoolingDownError) throw serviceUnavailableError(error.retryAfterSeconds);
      if (!(error instanceof IdentityProviderUnavailableError)) throw error;
      deps.logger.warn({ err: error.cause }, "bearer token not verified: identity provider's key set unavailable");
      throw serviceUnavailableError(retryAfterSeconds);
    }
  }
  try {
    return await deps.services.licenses.authenticateDevice(token);
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    deps.logger.warn({ err: error }, "device token lookup failed: database unavailable");
    throw serviceUnavailableError(retryAfterSeconds);
  }
}

/** Body-parser errors carry their status (413 too large, 400 malformed); others are ours. */
function httpStatusOfBodyError(error: unknown): number {
  const status = (error as { status?: unknown }).status;
  return typeof status === "number" && status >= 400 && status < 500 ? status : 500;
}
