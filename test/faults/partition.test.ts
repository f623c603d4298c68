// The API (src/main.ts, a child process) reaching PostgreSQL through a proxy that stops
// forwarding without closing anything: a network partition. Nothing fails fast then, so every
// wait must have its own bound: each request is answered 503 with Retry-After within
// TX_TIMEOUT_MS and a small margin (requests queued for one customer included, instead of each
// waiting out the one before), webhooks too, and the pools recover when the partition ends.
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { Prisma } from "../../src/generated/prisma/client";
import { closeDatabase, createDatabase as createPrisma, Transactor } from "../../src/platform/database";
import { createDatabase } from "../../src/platform/database-admin";
import { selectRows } from "../../src/platform/rows";
import { ApiProcess, metricValue, type Answer } from "../support/api-process";
import { signedDelivery, stripeEvent, stripeId } from "../support/fake-stripe";
import { PartitionProxy } from "../../scripts/nemesis/proxy";
import { StandalonePostgres } from "../support/standalone-postgres";

const root = path.resolve(__dirname, "..", "..");
const figuresFile = path.join(root, "test-artifacts", "partition.json");
const testTimeoutMs = 120_000;
const txTimeoutMs = 2000;
// Scheduling, the backoff's last sleep and HTTP: what a request may take past its deadline.
const answerMarginMs = 1000;
const queuedReserves = 6;
const recoveryGiveUpMs = 15_000;
const webhookSecret = "whsec_partition_test_secret";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let postgres: StandalonePostgres;
let proxy: PartitionProxy;
let api: ApiProcess;
let directUrl: string;
let hotCustomer: string;
let otherCustomer: string;

beforeAll(async () => {
  postgres = await StandalonePostgres.create();
  await postgres.start();
  directUrl = postgres.urlFor("splice");
  await createDatabase(directUrl);
  proxy = await PartitionProxy.start(postgres.port);
  api = await ApiProcess.start(throughProxy(directUrl), {
    TX_TIMEOUT_MS: String(txTimeoutMs),
    TX_MAX_WAIT_MS: "1000",
    TX_LOCK_TIMEOUT_MS: "1000",
    DATABASE_STATEMENT_TIMEOUT_MS: "2000",
    DATABASE_QUERY_TIMEOUT_MS: "3000",
    DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: "4000",
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    SWEEPER_ENABLED: "false",
    OUTBOX_ENABLED: "false",
  });
  const staff = api.staffToken();
  const create = async (email: string) =>
    (await api.graphql(staff, `mutation($email: String!) { createCustomer(input: { email: $email, initialSeconds: 100000 }) { id } }`, { email })).body.data!.createCustomer.id as string;
  hotCustomer = await create(`partition-hot-${process.pid}@example.com`);
  otherCustomer = await create(`partition-other-${process.pid}@example.com`);
}, testTimeoutMs);

/** The same database, reached through the proxy. */
function throughProxy(url: string): string {
  const parsed = new URL(url);
  parsed.port = String(proxy.port);
  return parsed.toString();
}

afterAll(async () => {
  await api?.stop();
  await proxy?.close();
  await postgres?.destroy();
});

const reserve = (customerId: string) =>
  api.graphql(api.customerToken(customerId), `mutation { reserveCredits(input: { estimatedSeconds: 5, endpoint: "partition" }) { reservation { id } } }`);
const release = (customerId: string, reservationId: string) =>
  api.graphql(api.customerToken(customerId), `mutation($id: ID!) { releaseReservation(input: { reservationId: $id }) { reservation { status } } }`, { id: reservationId });

async function deliverWebhook(): Promise<Answer> {
  const { body, signature } = signedDelivery(stripeEvent("customer.tax_id.created", { id: stripeId("txi") }), webhookSecret);
  const response = await fetch(`${api.baseUrl}/webhooks/stripe`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": signature }, body });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as Answer["body"] };
}

interface Timed {
  name: string;
  ms: number;
  status: number;
  retryAfter: string | null;
  code: unknown;
}

async function timed(name: string, send: () => Promise<Answer>): Promise<Timed> {
  const startedAt = Date.now();
  const answer = await send();
  return { name, ms: Date.now() - startedAt, status: answer.status, retryAfter: answer.retryAfter, code: answer.body.errors?.[0]?.extensions?.code };
}

/** Connections checked out or waited for, in both pools, polled until they settle. */
async function busyConnections(): Promise<{ busy: number; waiting: number }> {
  let state = { busy: -1, waiting: -1 };
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const page = (await api.get("/metrics")).text;
    const read = (sample: string) => metricValue(page, sample)!;
    state = {
      busy:
        read('splice_database_pool_connections{state="total"}') - read('splice_database_pool_connections{state="idle"}') +
        read('splice_database_lock_sessions{state="total"}') - read('splice_database_lock_sessions{state="idle"}'),
      waiting: read('splice_database_pool_connections{state="waiting_clients"}') + read('splice_database_lock_sessions{state="waiting_clients"}'),
    };
    if (state.busy === 0 && state.waiting === 0) return state;
    await sleep(100);
  }
  return state;
}

it(
  "during a partition every request is answered 503 with Retry-After within TX_TIMEOUT_MS and a margin, and the pools recover after it",
  async () => {
    // Warm: pooled connections exist, so the partition catches requests on them.
    for (const customerId of [hotCustomer, otherCustomer]) {
      const reserved = await reserve(customerId);
      expect(reserved.status).toBe(200);
      await release(customerId, reserved.body.data!.reserveCredits.reservation.id);
    }

    proxy.partition();
    const answers = await Promise.all([
      ...Array.from({ length: queuedReserves }, (_, index) => timed(`reserve ${index + 1} for one customer`, () => reserve(hotCustomer))),
      timed("another customer's read", () => api.graphql(api.customerToken(otherCustomer), "{ me { balance { secondsRemaining } } }")),
      timed("staff search", () => api.graphql(api.staffToken(), `{ searchCustomers(query: "partition") { edges { node { id } } } }`)),
      timed("Stripe webhook", deliverWebhook),
    ]);
    for (const answer of answers) {
      expect({ name: answer.name, status: answer.status, retryAfter: answer.retryAfter, inTime: answer.ms < txTimeoutMs + answerMarginMs }).toEqual({
        name: answer.name,
        status: 503,
        retryAfter: "2",
        inTime: true,
      });
    }
    expect(answers.filter((answer) => answer.name !== "Stripe webhook").map((answer) => answer.code)).toEqual(Array(answers.length - 1).fill("SERVICE_UNAVAILABLE"));

    proxy.heal();
    const healedAt = Date.now();
    let healMs: number | undefined;
    while (healMs === undefined && Date.now() - healedAt < recoveryGiveUpMs) {
      const answer = await reserve(hotCustomer);
      if (answer.status === 200 && !answer.body.errors) {
        healMs = Date.now() - healedAt;
        await release(hotCustomer, answer.body.data!.reserveCredits.reservation.id);
      } else await sleep(50);
    }
    expect(healMs).toBeDefined();
    const failures: string[] = [];
    for (let cycle = 0; cycle < 20; cycle += 1) {
      const reserved = await reserve(hotCustomer);
      if (reserved.status !== 200 || reserved.body.errors) failures.push(`${reserved.status} ${JSON.stringify(reserved.body.errors)}`);
      else await release(hotCustomer, reserved.body.data!.reserveCredits.reservation.id);
    }
    expect(failures).toEqual([]);
    expect(await busyConnections()).toEqual({ busy: 0, waiting: 0 });
    expect(api.alive).toBe(true);

    fs.mkdirSync(path.dirname(figuresFile), { recursive: true });
    fs.writeFileSync(figuresFile, `${JSON.stringify({ txTimeoutMs, answers, healMs }, null, 2)}\n`);
  },
  testTimeoutMs,
);

it(
  "a transaction cut off past Prisma's timeout, outside any request, fails as unavailable without an unhandled rejection",
  async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const database = createPrisma(throughProxy(directUrl), { poolSize: 2, acquireTimeoutMs: 1000, timeouts: { statementMs: 1000, queryMs: 1500, idleInTransactionMs: 3000 }, preparedStatements: { enabled: true, namesMax: 10 }, commitWaitMinMs: 100 });
    const transactor = new Transactor(database, { maxAttempts: 1, backoffBaseMs: 1, backoffMaxMs: 1, maxWaitMs: 1000, timeoutMs: 300, lockTimeoutMs: 1000, commitWaitMinMs: 100, unavailableRetryAfterSeconds: 1 });
    try {
      // Prisma rolls back at 300 ms from a timer, while the statement waits for its 1.5 s bound.
      const stuck = transactor.once(async (tx) => {
        proxy.partition();
        return selectRows(tx, "test.stuck", z.unknown(), Prisma.sql`SELECT 1`);
      });
      await expect(stuck).rejects.toThrow(/database unavailable/);
      await sleep(500);
      expect(unhandled).toEqual([]);
    } finally {
      proxy.heal();
      process.off("unhandledRejection", onUnhandled);
      await closeDatabase(database);
    }
  },
  testTimeoutMs,
);
