// npm run bench:usage: Customer.usage over HTTP for one customer with a million confirmed
// reservations (two years, 8 endpoints), with and without the partial index
// credit_reservation_confirmed_by_settled_at, in one run. Prints medians and p95 per query and
// the plan PostgreSQL chose; writes bench/results/usage.json.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../src/config";
import type { Prisma } from "../src/generated/prisma/client";
import { CreditsStore } from "../src/modules/credits/credits.store";
import type { DatabaseClient } from "../src/platform/database";
import { mintToken } from "../src/platform/auth";
import { createDatabase, dropDatabase, migrateDatabase } from "../src/platform/database-admin";
import { startEmbeddedPostgres } from "../src/platform/embedded-postgres";
import { percentile, waitForReady } from "./server";
import { buildServer, serverArguments } from "../scripts/server-command";

const root = path.resolve(__dirname, "..");
const reservationCount = Number(process.env.BENCH_USAGE_RESERVATIONS ?? 1_000_000);
const repetitions = Number(process.env.BENCH_USAGE_REPETITIONS ?? 15);
const port = Number(process.env.BENCH_PORT ?? 4101);
const pgPort = Number(process.env.BENCH_PG_PORT ?? 54350);
const indexName = "credit_reservation_confirmed_by_settled_at";

const queries = {
  "366 days by DAY": { granularity: "DAY", byEndpoint: false, days: 366 },
  "366 days by MONTH per endpoint": { granularity: "MONTH", byEndpoint: true, days: 366 },
  "31 days by DAY per endpoint": { granularity: "DAY", byEndpoint: true, days: 31 },
} as const;

async function seed(sql: pg.Client, customerId: string, to: Date): Promise<void> {
  // Two years of jobs ending at `to`, every one CONFIRMED (charged + unbilled = actual).
  await sql.query(
    `INSERT INTO credit_reservation (customer_id, endpoint, reserved_seconds, actual_seconds, charged_seconds, unbilled_seconds,
                                     status, actor, created_at, expires_at, settled_at)
     SELECT $1::uuid, 'endpoint-' || (n % 8), 60, 45, 45, 0, 'CONFIRMED', 'bench',
            t - interval '1 minute', t + interval '6 hours', t
     FROM generate_series(1, $2::int) AS n,
          LATERAL (SELECT $3::timestamptz - (n::double precision / $2 * 730) * interval '1 day' AS t) AS at`,
    [customerId, reservationCount, to],
  );
  // As autovacuum leaves a table that stopped changing: statistics and the visibility map (index-only scans).
  await sql.query("VACUUM ANALYZE credit_reservation");
}

async function measure(staffToken: string, customerId: string, to: Date): Promise<Record<string, { medianMs: number; p95Ms: number; buckets: number }>> {
  const results: Record<string, { medianMs: number; p95Ms: number; buckets: number }> = {};
  for (const [name, query] of Object.entries(queries)) {
    const from = new Date(to.getTime() - query.days * 86_400_000);
    const timings: number[] = [];
    let buckets = 0;
    for (let round = 0; round < repetitions; round += 1) {
      const started = performance.now();
      const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${staffToken}` },
        body: JSON.stringify({
          query: `query($id: ID!, $from: DateTime!, $to: DateTime!, $g: UsageGranularity, $e: Boolean) {
            customer(id: $id) { usage(from: $from, to: $to, granularity: $g, byEndpoint: $e) { chargedSeconds } } }`,
          variables: { id: customerId, from: from.toISOString(), to: to.toISOString(), g: query.granularity, e: query.byEndpoint },
        }),
      });
      const body = (await response.json()) as { data?: { customer: { usage: unknown[] } }; errors?: unknown };
      if (!body.data) throw new Error(`usage failed: ${JSON.stringify(body.errors)}`);
      timings.push(performance.now() - started);
      buckets = body.data.customer.usage.length;
    }
    timings.sort((a, b) => a - b);
    results[name] = { medianMs: Math.round(percentile(timings, 0.5) * 10) / 10, p95Ms: Math.round(percentile(timings, 0.95) * 10) / 10, buckets };
  }
  return results;
}

/** The statement the credits store sends for a 366-day DAY usage, captured as the pg driver would receive it. */
async function usageStatement(customerId: string, to: Date): Promise<Prisma.Sql> {
  let captured: Prisma.Sql | undefined;
  const capture = { $queryRaw: async (statement: Prisma.Sql) => ((captured = statement), []) } as unknown as DatabaseClient;
  await new CreditsStore().usage(capture, customerId, { from: new Date(to.getTime() - 366 * 86_400_000), to, unit: "day" }, 5000);
  return captured!;
}

async function planOf(sql: pg.Client, customerId: string, to: Date): Promise<string> {
  // The service's sessions plan without sequential or bitmap scans (platform/database.ts).
  await sql.query("SET enable_seqscan = off; SET enable_bitmapscan = off; SET TimeZone = 'UTC'");
  const statement = await usageStatement(customerId, to);
  const plan = await sql.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${statement.text}`, statement.values);
  await sql.query("RESET enable_seqscan; RESET enable_bitmapscan");
  return plan.rows.map((row) => row["QUERY PLAN"]).join("\n");
}

async function main(): Promise<void> {
  buildServer();
  const cluster = await startEmbeddedPostgres({ dataDirectory: path.join(root, ".data", "bench-usage-postgres"), port: pgPort, user: "splice", password: "splice" });
  const databaseUrl = cluster.urlFor("splice_bench_usage");
  let server: ChildProcess | undefined;
  const sql = new pg.Client({ connectionString: databaseUrl });
  sql.on("error", (error) => console.error("bench connection:", error.message));
  try {
    await dropDatabase(databaseUrl);
    await createDatabase(databaseUrl);
    await migrateDatabase(databaseUrl);
    const environment = { ...process.env, NODE_ENV: "development", DATABASE_URL: databaseUrl, PORT: String(port), LOG_LEVEL: "warn", SWEEPER_ENABLED: "false" };
    const config = loadConfig(environment);
    server = spawn(process.execPath, serverArguments(), { cwd: root, env: environment, stdio: "inherit" });
    await waitForReady(server, port);
    await sql.connect();
    // One statement: a customer may not be committed without its balance row.
    const customer = await sql.query(
      `WITH c AS (INSERT INTO customer (email) VALUES ('usage-bench@example.com') RETURNING id)
       INSERT INTO credit_balance (customer_id) SELECT id FROM c RETURNING customer_id`,
    );
    const customerId = customer.rows[0].customer_id as string;
    const to = new Date(Date.UTC(2026, 10, 1));
    const seedStarted = performance.now();
    await seed(sql, customerId, to);
    console.log(`seeded ${reservationCount} confirmed reservations in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);
    const staffToken = mintToken(config.auth, "staff", "bench", 3600);

    const withIndex = await measure(staffToken, customerId, to);
    const planWithIndex = await planOf(sql, customerId, to);
    await sql.query(`ALTER INDEX ${indexName} RENAME TO ${indexName}_bench_off`);
    await sql.query(`DROP INDEX ${indexName}_bench_off`);
    const withoutIndex = await measure(staffToken, customerId, to);
    const planWithoutIndex = await planOf(sql, customerId, to);

    console.log(`\nCustomer.usage over HTTP, ${reservationCount} confirmed reservations of one customer, ${repetitions} requests each (median / p95 ms):`);
    console.log("| query | buckets | with the index | without | without/with |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const name of Object.keys(queries)) {
      const a = withIndex[name]!;
      const b = withoutIndex[name]!;
      console.log(`| ${name} | ${a.buckets} | ${a.medianMs} / ${a.p95Ms} | ${b.medianMs} / ${b.p95Ms} | ${(b.medianMs / a.medianMs).toFixed(1)} |`);
    }
    console.log(`\nplan with the index:\n${planWithIndex}\n\nplan without:\n${planWithoutIndex}`);
    fs.mkdirSync(path.join(root, "bench", "results"), { recursive: true });
    fs.writeFileSync(
      path.join(root, "bench", "results", "usage.json"),
      `${JSON.stringify({ reservations: reservationCount, repetitions, withIndex, withoutIndex, planWithIndex, planWithoutIndex }, null, 2)}\n`,
    );
  } finally {
    await sql.end().catch(() => undefined);
    server?.kill("SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 500));
    await cluster.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
