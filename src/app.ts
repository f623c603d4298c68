// The HTTP application: health probes, the GraphQL endpoint, and (in its own module) the
// Stripe webhook route, which must be mounted before any JSON body parser.
import crypto from "node:crypto";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { expressMiddleware } from "@as-integrations/express5";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import type { Config } from "./config";
import type { RequestContext } from "./context";
import { bearerToken, isSignedToken, verifySignedToken, type Caller } from "./platform/auth";
import type { Database } from "./platform/database";
import { createErrorFormatter, httpStatusPlugin } from "./platform/errors";
import { createMetricsRegistry, metricsHandler } from "./platform/metrics";
import { stripeWebhookRouter } from "./modules/billing/webhook.route";
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
  const apollo = new ApolloServer<RequestContext>({
    schema: buildSchema(),
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    formatError: createErrorFormatter((error) => logger.error({ err: error }, "unexpected error in a GraphQL operation")),
    plugins: [httpStatusPlugin, ApolloServerPluginLandingPageDisabled()],
  });
  await apollo.start();

  const app = express();
  app.disable("x-powered-by");
  if (config.trustProxy) app.set("trust proxy", config.trustProxy);
  app.use((request: Request, response: Response, next: NextFunction) => {
    const given = request.header("x-request-id");
    const requestId = given && requestIdPattern.test(given) ? given : crypto.randomUUID();
    response.locals.requestId = requestId;
    response.setHeader("X-Request-Id", requestId);
    next();
  });

  // Before any JSON parser: Stripe signs the raw bytes.
  app.use(stripeWebhookRouter(deps.services.webhooks, config.stripe.webhookMaxBytes));

  app.get("/healthz", (_request, response) => {
    response.json({ status: "ok" });
  });
  app.get("/readyz", async (_request, response) => {
    try {
      await deps.database.$queryRaw`SELECT 1`;
      response.json({ status: "ready" });
    } catch (error) {
      logger.warn({ err: error }, "readiness check failed");
      response.status(503).json({ status: "database unreachable" });
    }
  });

  app.get("/metrics", metricsHandler(createMetricsRegistry(deps.services.transactor.counters), config));

  app.use(
    "/graphql",
    express.json({ limit: graphqlBodyLimit }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => ({
        caller: await identifyCaller(deps, req.header("authorization")),
        services: deps.services,
        requestId: String(res.locals.requestId),
        clientAddress: req.ip ?? req.socket.remoteAddress ?? "unknown",
      }),
    }),
  );

  app.use((_request: Request, response: Response) => {
    response.status(404).json({ error: "not found" });
  });
  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    const status = httpStatusOfBodyError(error);
    if (status === 500) logger.error({ err: error }, "unhandled error in an HTTP route");
    response.status(status).json({ error: status === 500 ? "internal server error" : "bad request" });
  });
  return { express: app, apollo };
}

async function identifyCaller(deps: AppDependencies, authorizationHeader: string | undefined): Promise<Caller> {
  if (authorizationHeader === undefined) return { kind: "anonymous" };
  const token = bearerToken(authorizationHeader);
  if (!token) return { kind: "rejected", reason: "expected 'Authorization: Bearer <token>'" };
  if (isSignedToken(token)) return verifySignedToken(deps.config.auth.tokenSecret, token);
  return deps.services.licenses.authenticateDevice(token);
}

/** Body-parser errors carry their status (413 too large, 400 malformed); others are ours. */
function httpStatusOfBodyError(error: unknown): number {
  const status = (error as { status?: unknown; type?: unknown }).status;
  return typeof status === "number" && status >= 400 && status < 500 ? status : 500;
}
