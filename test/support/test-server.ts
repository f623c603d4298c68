// A real server for one test file: its own database copied from the migrated template, the
// real Express + Apollo app listening on a free port, and clients that speak HTTP to it.
import crypto from "node:crypto";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import pg from "pg";
import { buildApp } from "../../src/app";
import { loadConfig, type Config } from "../../src/config";
import type { Tier } from "../../src/modules/customers";
import { mintToken } from "../../src/platform/auth";
import { closeDatabase, createDatabase as createPrisma, databaseSettingsOf, type Database } from "../../src/platform/database";
import { createDatabase, dropDatabase, withDatabase } from "../../src/platform/database-admin";
import { createLogger } from "../../src/platform/logger";
import type { Mailer } from "../../src/platform/mailer";
import type { Logger } from "pino";
import { createServices, type Services } from "../../src/services";
import { serverUrlVariable, templateDatabaseName } from "./test-database";

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  data: T | null | undefined;
  errors: { message: string; path?: string[]; extensions?: Record<string, unknown> }[] | undefined;
}

/** Time the services see; tests move it forward instead of sleeping. */
export class TestClock {
  private offsetMs = 0;
  now = (): Date => new Date(Date.now() + this.offsetMs);
  advanceSeconds(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }
}

export interface TestCustomer {
  id: string;
  token: string;
  email: string;
}

export interface TestServer {
  baseUrl: string;
  databaseUrl: string;
  config: Config;
  services: Services;
  database: Database;
  clock: TestClock;
  /** Direct SQL, for assertions on stored state only. */
  sql: pg.Pool;
  staffToken: string;
  tokenFor(customerId: string): string;
  graphql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<GraphQLResponse<T>>;
  createCustomer(options?: { initialSeconds?: number; tier?: Tier; email?: string }): Promise<TestCustomer>;
  close(): Promise<void>;
}

let signingKeyPem: string | undefined;

/** One Ed25519 key per test process, for servers whose test configures none. */
export function testSigningKeyPem(): string {
  signingKeyPem ??= crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  return signingKeyPem;
}

export function uniqueEmail(prefix = "customer"): string {
  return `${prefix}-${crypto.randomBytes(6).toString("hex")}@example.com`;
}

export interface TestServerOptions {
  /** Extra environment variables for loadConfig. */
  environment?: Record<string, string>;
  /** Serve an existing database (a second instance, or an unreachable one) instead of a fresh copy. */
  databaseUrl?: string;
  mailer?: Mailer;
  /** Where log lines go (default: the configured logger, silent in tests). */
  logger?: Logger;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const environment = options.environment ?? {};
  const ownsDatabase = options.databaseUrl === undefined;
  const databaseUrl = options.databaseUrl ?? (await createTestDatabase());

  const config = loadConfig({
    NODE_ENV: "test",
    DATABASE_URL: databaseUrl,
    SWEEPER_ENABLED: "false",
    OUTBOX_ENABLED: "false",
    MAIL_DIRECTORY: path.join(os.tmpdir(), "splice-test-mail"),
    ...environment,
  });
  const database = createPrisma(databaseUrl, databaseSettingsOf(config));
  const clock = new TestClock();
  const logger = options.logger ?? createLogger(config);
  // Configured keys when the test sets LICENSE_SIGNING_KEYS, else this process's test key.
  const licenseSigningKeyPems = config.licenses.signingKeyPems.length > 0 ? config.licenses.signingKeyPems : [testSigningKeyPem()];
  const services = createServices(config, databaseUrl, database, logger, { now: clock.now, mailer: options.mailer, licenseSigningKeyPems });
  const app = await buildApp({ config, database, services, logger });
  const server: Server = await new Promise((resolve) => {
    const listening = app.express.listen(0, "127.0.0.1", () => resolve(listening));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sql = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  sql.on("error", () => undefined);
  const tokenFor = (customerId: string) => mintToken(config.auth, "customer", customerId, 3600);
  const staffToken = mintToken(config.auth, "staff", "test-staff", 3600);

  const graphql: TestServer["graphql"] = async (query, variables, token, headers = {}) => {
    const response = await fetch(`${baseUrl}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: any; errors?: GraphQLResponse["errors"] };
    return { status: response.status, headers: response.headers, data: body.data, errors: body.errors };
  };

  const createCustomer: TestServer["createCustomer"] = async (options = {}) => {
    const email = options.email ?? uniqueEmail();
    const result = await graphql<{ createCustomer: { id: string } }>(
      `mutation Create($input: CreateCustomerInput!) { createCustomer(input: $input) { id } }`,
      { input: { email, tier: options.tier ?? "STARTER", initialSeconds: options.initialSeconds } },
      staffToken,
    );
    if (!result.data?.createCustomer) throw new Error(`createCustomer failed: ${JSON.stringify(result.errors)}`);
    const id = result.data.createCustomer.id;
    return { id, email, token: tokenFor(id) };
  };

  const close = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await app.apollo.stop();
    await sql.end();
    await services.outboxWorker.stop();
    services.mailer.close();
    await services.customerSerializer.close();
    await closeDatabase(database);
    if (ownsDatabase) await dropDatabase(databaseUrl);
  };

  return { baseUrl, databaseUrl, config, services, database, clock, sql, staffToken, tokenFor, graphql, createCustomer, close };
}

async function createTestDatabase(): Promise<string> {
  const serverUrl = process.env[serverUrlVariable];
  if (!serverUrl) throw new Error("test database server not prepared: run the tests with jest (npm test)");
  const databaseName = `splice_test_${process.pid}_${crypto.randomBytes(4).toString("hex")}`;
  const databaseUrl = withDatabase(serverUrl, databaseName);
  await createDatabase(databaseUrl, templateDatabaseName);
  return databaseUrl;
}

/** The error codes of a response, in order. */
export function errorCodes(response: GraphQLResponse<unknown>): string[] {
  return (response.errors ?? []).map((error) => String(error.extensions?.code));
}

/** Runs the outbox until nothing is due, waiting out retry delays. */
export async function drainOutbox(instance: TestServer, rounds = 50): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    const pending = await instance.sql.query("SELECT count(*)::int AS n FROM outbox_job WHERE status = 'PENDING'");
    if (pending.rows[0].n === 0) return;
    await instance.services.outboxWorker.runOnce();
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
}
