// npm run bench: reserve+confirm cycles over real HTTP against the real server (a separate
// process, on its own embedded PostgreSQL), at several concurrencies, spread over many
// customers and all on one; then, in the same run, the same cycle as one SQL statement with
// `pg` as the physical limit. Prints a table and writes bench/results/latest.json.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../src/config";
import { mintToken } from "../src/platform/auth";
import { createDatabase, dropDatabase, migrateDatabase } from "../src/platform/database-admin";
import { startEmbeddedPostgres } from "../src/platform/embedded-postgres";
import { waitForReady } from "./server";

const root = path.resolve(__dirname, "..");
const scenarioSeconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrencies = (process.env.BENCH_CONCURRENCY ?? "1,16,64").split(",").map(Number);
const spreadCustomers = Number(process.env.BENCH_CUSTOMERS ?? 1000);
const port = Number(process.env.BENCH_PORT ?? 4100);
const pgPort = Number(process.env.BENCH_PG_PORT ?? 54349);
const customerSeconds = 100_000_000;
const reservedSeconds = 60;
const actualSeconds = 45;

interface Result {
  target: "api" | "sql";
  spread: string;
  concurrency: number;
  cycles: number;
  errors: number;
  seconds: number;
  cyclesPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  retriesPerCycle: number | null;
}

function percentile(sortedMs: number[], fraction: number): number {
  if (sortedMs.length === 0) return 0;
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor(fraction * sortedMs.length))]!;
}

/** Runs `cycle` from `concurrency` loops for the scenario's duration; each loop picks its customer. */
async function drive(concurrency: number, cycle: (worker: number, iteration: number) => Promise<boolean>) {
  const latenciesMs: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + scenarioSeconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let iteration = 0; performance.now() < deadline; iteration += 1) {
        const begun = performance.now();
        const ok = await cycle(worker, iteration);
        if (ok) latenciesMs.push(performance.now() - begun);
        else errors += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latenciesMs.sort((a, b) => a - b);
  return { cycles: latenciesMs.length, errors, seconds, latenciesMs };
}

async function graphql(token: string, query: string, variables: Record<string, unknown>): Promise<any> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

const reserveMutation = `mutation R($input: ReserveCreditsInput!) { reserveCredits(input: $input) { reservation { id } } }`;
const confirmMutation = `mutation C($input: ConfirmReservationInput!) { confirmReservation(input: $input) { balance { secondsRemaining } } }`;

async function apiCycle(token: string): Promise<boolean> {
  const reserved = await graphql(token, reserveMutation, { input: { estimatedSeconds: reservedSeconds, endpoint: "bench" } });
  const id = reserved.data?.reserveCredits?.reservation?.id;
  if (!id) return false;
  const confirmed = await graphql(token, confirmMutation, { input: { reservationId: id, actualSeconds } });
  return Boolean(confirmed.data?.confirmReservation);
}

/** The cycle's net effect (charge, settled reservation, two ledger entries) as one statement. */
const sqlCycle = `
  WITH charged AS (
    UPDATE credit_balance SET seconds_remaining = seconds_remaining - $2
    WHERE customer_id = $1 AND seconds_remaining >= $3
    RETURNING customer_id AS id, seconds_remaining),
  reservation AS (
    INSERT INTO credit_reservation (customer_id, endpoint, reserved_seconds, actual_seconds, charged_seconds,
      unbilled_seconds, status, actor, expires_at, settled_at)
    SELECT id, 'bench', $3, $2, $2, 0, 'CONFIRMED', 'bench', now() + interval '1 hour', now() FROM charged
    RETURNING id, customer_id)
  INSERT INTO ledger_entry (customer_id, kind, delta_seconds, balance_after, reservation_id, actor)
  SELECT r.customer_id, k.kind::"LedgerEntryKind", k.delta, c.seconds_remaining, r.id, 'bench'
  FROM reservation r JOIN charged c ON c.id = r.customer_id
  CROSS JOIN (VALUES ('RESERVE', -$3::int), ('CONFIRM', $3::int - $2::int)) AS k(kind, delta)`;

async function scrapeRetries(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const match = /^splice_transaction_conflicts_total (\d+)$/m.exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

async function main(): Promise<void> {
  const cluster = await startEmbeddedPostgres({
    dataDirectory: path.join(root, ".data", "bench-postgres"),
    port: pgPort,
    user: "splice",
    password: "splice",
  });
  const databaseUrl = cluster.urlFor("splice_bench");
  let server: ChildProcess | undefined;
  try {
    await dropDatabase(databaseUrl);
    await createDatabase(databaseUrl);
    await migrateDatabase(databaseUrl);
    const environment = { ...process.env, NODE_ENV: "development", DATABASE_URL: databaseUrl, PORT: String(port), LOG_LEVEL: "warn", SWEEPER_ENABLED: "false",
      // 64 clients on one customer hold up to 64 reservations at once; the default limit is 50.
      ACTIVE_RESERVATIONS_PER_CUSTOMER_MAX: "100" };
    const config = loadConfig(environment);
    server = spawn(process.execPath, ["--import", "tsx", path.join(root, "src", "main.ts")], { cwd: root, env: environment, stdio: "inherit" });
    await waitForReady(server, port);

    const staff = mintToken(config.auth, "staff", "bench", 3600);
    const customerIds: string[] = [];
    for (let batch = 0; batch < spreadCustomers; batch += 50) {
      const created = await Promise.all(
        Array.from({ length: Math.min(50, spreadCustomers - batch) }, (_, index) =>
          graphql(staff, `mutation N($input: CreateCustomerInput!) { createCustomer(input: $input) { id } }`, {
            input: { email: `bench-${batch + index}@example.com`, initialSeconds: customerSeconds },
          }),
        ),
      );
      customerIds.push(...created.map((response) => response.data.createCustomer.id as string));
    }
    const tokens = customerIds.map((id) => mintToken(config.auth, "customer", id, 3600));
    const hotToken = tokens[0]!;

    const results: Result[] = [];
    const spreads = [`${spreadCustomers} customers`, "1 customer"];
    for (const spread of spreads) {
      for (const concurrency of concurrencies) {
        const pick = (worker: number, iteration: number) =>
          spread === "1 customer" ? hotToken : tokens[(worker * 7919 + iteration * 104_729) % tokens.length]!;
        const retriesBefore = await scrapeRetries();
        const run = await drive(concurrency, (worker, iteration) => apiCycle(pick(worker, iteration)));
        const retries = (await scrapeRetries()) - retriesBefore;
        results.push(summarise("api", spread, concurrency, run, retries));
      }
    }

    const sqlPool = new pg.Pool({ connectionString: databaseUrl, max: Math.max(...concurrencies) });
    try {
      for (const spread of spreads) {
        for (const concurrency of concurrencies) {
          const pick = (worker: number, iteration: number) =>
            spread === "1 customer" ? customerIds[0]! : customerIds[(worker * 7919 + iteration * 104_729) % customerIds.length]!;
          const run = await drive(concurrency, async (worker, iteration) => {
            const result = await sqlPool.query(sqlCycle, [pick(worker, iteration), actualSeconds, reservedSeconds]);
            return result.rowCount === 2;
          });
          results.push(summarise("sql", spread, concurrency, run, null));
        }
      }
    } finally {
      await sqlPool.end();
    }
    report(results);
    await activationStorms(staff, customerIds);
  } finally {
    server?.kill("SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 500));
    await cluster.stop();
  }
}

function summarise(
  target: Result["target"],
  spread: Result["spread"],
  concurrency: number,
  run: Awaited<ReturnType<typeof drive>>,
  retries: number | null,
): Result {
  const round = (value: number) => Math.round(value * 100) / 100;
  return {
    target,
    spread,
    concurrency,
    cycles: run.cycles,
    errors: run.errors,
    seconds: round(run.seconds),
    cyclesPerSecond: round(run.cycles / run.seconds),
    p50Ms: round(percentile(run.latenciesMs, 0.5)),
    p95Ms: round(percentile(run.latenciesMs, 0.95)),
    p99Ms: round(percentile(run.latenciesMs, 0.99)),
    retriesPerCycle: retries === null ? null : round(retries / Math.max(1, run.cycles)),
  };
}

function report(results: Result[]): void {
  const rows = results
    .filter((result) => result.target === "api")
    .map((api) => {
      const sql = results.find((result) => result.target === "sql" && result.spread === api.spread && result.concurrency === api.concurrency);
      const ratio = sql ? Math.round((api.cyclesPerSecond / sql.cyclesPerSecond) * 1000) / 1000 : null;
      return { ...api, sqlCyclesPerSecond: sql?.cyclesPerSecond ?? null, sqlP99Ms: sql?.p99Ms ?? null, apiToSqlRatio: ratio };
    });
  console.log(`\nreserve+confirm cycles, ${scenarioSeconds} s per scenario (API: two HTTP requests, two Serializable transactions; SQL: one statement)\n`);
  console.table(
    rows.map((row) => ({
      spread: row.spread,
      clients: row.concurrency,
      "api cycles/s": row.cyclesPerSecond,
      "p50 ms": row.p50Ms,
      "p95 ms": row.p95Ms,
      "p99 ms": row.p99Ms,
      "retries/cycle": row.retriesPerCycle,
      errors: row.errors,
      "sql cycles/s": row.sqlCyclesPerSecond,
      "sql p99 ms": row.sqlP99Ms,
      "api/sql": row.apiToSqlRatio,
    })),
  );
  const directory = path.join(root, "bench", "results");
  fs.mkdirSync(directory, { recursive: true });
  const file = path.join(directory, "latest.json");
  fs.writeFileSync(file, JSON.stringify({ measuredAt: new Date().toISOString(), scenarioSeconds, rows, results }, null, 2));
  console.log(`results written to ${path.relative(root, file)}`);
}

const activateMutation = `mutation A($input: ActivateLicenseInput!) { activateLicense(input: $input) { alreadyActivated customerId } }`;

async function activateOnce(input: Record<string, unknown>): Promise<{ ms: number; first: boolean | undefined; error: string | undefined }> {
  const begun = performance.now();
  const response = await graphql("", activateMutation, { input });
  return { ms: performance.now() - begun, first: response.data ? !response.data.activateLicense.alreadyActivated : undefined, error: response.errors?.[0]?.extensions?.code };
}

/** 100 simultaneous activations of one key, then of 100 keys (each with its own device). */
async function activationStorms(staff: string, customerIds: string[]): Promise<void> {
  const stormSize = 100;
  const keys: string[] = [];
  // One key for the first storm, a hundred fresh ones for the second.
  for (const customerId of customerIds.slice(1, 2 + stormSize)) {
    const issued = await graphql(staff, `mutation I($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: customerId });
    keys.push(issued.data.issueLicense.license.key);
  }
  const storms = [
    { name: `${stormSize} activations of one key`, inputs: Array.from({ length: stormSize }, () => ({ key: keys[0] })) },
    { name: `${stormSize} keys, one device each`, inputs: keys.slice(1).map((key, index) => ({ key, device: { fingerprint: `bench-device-${index}` } })) },
  ];
  const rows = [];
  for (const storm of storms) {
    const started = performance.now();
    const outcomes = await Promise.all(storm.inputs.map((input) => activateOnce(input)));
    const seconds = (performance.now() - started) / 1000;
    const latencies = outcomes.map((outcome) => outcome.ms).sort((a, b) => a - b);
    rows.push({
      storm: storm.name,
      "activations/s": Math.round((outcomes.length / seconds) * 10) / 10,
      "p50 ms": Math.round(percentile(latencies, 0.5) * 10) / 10,
      "p99 ms": Math.round(percentile(latencies, 0.99) * 10) / 10,
      "first activations": outcomes.filter((outcome) => outcome.first === true).length,
      errors: outcomes.filter((outcome) => outcome.error).length,
    });
  }
  console.log("\nactivation storms (all requests sent at once)\n");
  console.table(rows);
  const file = path.join(root, "bench", "results", "latest.json");
  const saved = JSON.parse(fs.readFileSync(file, "utf8"));
  fs.writeFileSync(file, JSON.stringify({ ...saved, activationStorms: rows }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
