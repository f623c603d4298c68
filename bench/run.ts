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
import { percentile, waitForReady } from "./server";
import { buildServer, serverArguments } from "../scripts/server-command";

const root = path.resolve(__dirname, "..");
const scenarioSeconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrencies = (process.env.BENCH_CONCURRENCY ?? "1,16,64").split(",").map(Number);
const spreadCustomers = Number(process.env.BENCH_CUSTOMERS ?? 1000);
const port = Number(process.env.BENCH_PORT ?? 4100);
const pgPort = Number(process.env.BENCH_PG_PORT ?? 54349);
// Set: the server writes a V8 CPU profile there on exit (`npm run bench:profile -- <dir>` sums it by layer).
const profileDirectory = process.env.BENCH_PROFILE_DIR;
// Set: PostgreSQL counts every statement (pg_stat_statements); the top ones by total time are printed.
const countStatements = process.env.BENCH_PG_STATEMENTS === "1";
// The server's WEB_CONCURRENCY.
const serverWorkers = Number(process.env.BENCH_WORKERS ?? 1);
const clockTicksPerSecond = 100;
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
  /** API: the server's CPU per cycle (its processes, as the kernel counts them); SQL: the bench client's own. */
  cpuMsPerCycle?: number;
  /** API: PostgreSQL's and the load generator's CPU per cycle, and the cores all three kept busy. */
  cpuShares?: { postgresMsPerCycle: number; clientMsPerCycle: number; coresBusy: number };
}

const round = (value: number) => Math.round(value * 100) / 100;

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

/**
 * The server's transaction conflicts, summed over its workers: each worker's /metrics counts its
 * own (and names its pid), so fresh connections are opened until every worker has answered.
 */
async function scrapeConflicts(): Promise<number> {
  const byPid = new Map<string, number>();
  for (let attempt = 0; attempt < 20 * serverWorkers && byPid.size < serverWorkers; attempt += 1) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { connection: "close" } })).text();
    const pid = /^splice_process_info\{pid="(\d+)"\} 1$/m.exec(text)?.[1] ?? "unknown";
    byPid.set(pid, Number(/^splice_transaction_conflicts_total (\d+)$/m.exec(text)?.[1] ?? Number.NaN));
  }
  return [...byPid.values()].reduce((sum, conflicts) => sum + conflicts, 0);
}

/**
 * CPU seconds (user + system) the kernel counted for PostgreSQL: the postmaster, its live
 * backends, and the backends that ended (their time moves to the postmaster's reaped-children
 * counters, so that connections closing mid-scenario are not lost).
 */
function postgresCpuSeconds(): number {
  const processes = new Map<number, { parentPid: number; ownTicks: number; reapedTicks: number }>();
  for (const entry of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8").trim();
      if (!stat.includes(" (postgres) ")) continue;
      const fields = stat.replace(/^.*\) /, "").split(" ");
      // After "(comm) ": state ppid ... utime (12th) stime (13th) cutime (14th) cstime (15th).
      processes.set(Number(entry), {
        parentPid: Number(fields[1]),
        ownTicks: Number(fields[11]) + Number(fields[12]),
        reapedTicks: Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // A backend that ended while the list was read: its time is in the postmaster's reaped counters.
    }
  }
  let ticks = 0;
  for (const process of processes.values()) ticks += process.ownTicks + (processes.has(process.parentPid) ? 0 : process.reapedTicks);
  return ticks / clockTicksPerSecond;
}

/** CPU seconds (user + system) the kernel counted for the server: its process and its workers. */
function serverCpuSeconds(serverPid: number): number {
  const ticks = (pid: number) => {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").trim().replace(/^.*\) /, "").split(" ");
    // After "(comm) ": state ppid ... utime (12th) stime (13th).
    return { parentPid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  };
  let total = ticks(serverPid).ticks;
  for (const entry of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const child = ticks(Number(entry));
      if (child.parentPid === serverPid) total += child.ticks;
    } catch {
      // A process that ended while the list was read.
    }
  }
  return total / clockTicksPerSecond;
}

async function withClient<T>(databaseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", (error) => console.error("bench connection:", error.message));
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function resetStatementCounts(databaseUrl: string): Promise<void> {
  await withClient(databaseUrl, async (client) => {
    await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    await client.query("SELECT pg_stat_statements_reset()");
  });
}

/** PostgreSQL's own time per statement over the API scenarios, per reserve+confirm cycle. */
async function printStatementCounts(databaseUrl: string, cycles: number): Promise<void> {
  const rows = await withClient(databaseUrl, async (client) =>
    (await client.query(
      `SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       ORDER BY total_exec_time DESC LIMIT 20`,
    )).rows as { calls: string; total_exec_time: number; query: string }[],
  );
  const totalMs = rows.reduce((sum, row) => sum + row.total_exec_time, 0);
  console.log(`\nPostgreSQL statements over the API scenarios (${cycles} cycles; ${(totalMs / cycles).toFixed(2)} ms of execution per cycle in the top 20):`);
  console.table(rows.map((row) => ({ "calls/cycle": (Number(row.calls) / cycles).toFixed(2), "ms/cycle": (row.total_exec_time / cycles).toFixed(3), "mean ms": (row.total_exec_time / Number(row.calls)).toFixed(3), query: row.query })));
}

async function main(): Promise<void> {
  buildServer();
  const cluster = await startEmbeddedPostgres({
    dataDirectory: path.join(root, ".data", "bench-postgres"),
    port: pgPort,
    user: "splice",
    password: "splice",
    settings: countStatements ? ["shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all"] : [],
  });
  const databaseUrl = cluster.urlFor("splice_bench");
  let server: ChildProcess | undefined;
  try {
    await dropDatabase(databaseUrl);
    await createDatabase(databaseUrl);
    await migrateDatabase(databaseUrl);
    const environment = { ...process.env, NODE_ENV: "development", DATABASE_URL: databaseUrl, PORT: String(port), LOG_LEVEL: "warn", SWEEPER_ENABLED: "false",
      WEB_CONCURRENCY: String(serverWorkers),
      // 64 clients on one customer hold up to 64 reservations at once; the default limit is 50.
      ACTIVE_RESERVATIONS_PER_CUSTOMER_MAX: "100" };
    const config = loadConfig(environment);
    const profiling = profileDirectory ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDirectory)}`] : [];
    server = spawn(process.execPath, serverArguments(profiling), { cwd: root, env: environment, stdio: "inherit" });
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

    if (countStatements) await resetStatementCounts(databaseUrl);
    const results: Result[] = [];
    const spreads = [`${spreadCustomers} customers`, "1 customer"];
    for (const spread of spreads) {
      for (const concurrency of concurrencies) {
        const pick = (worker: number, iteration: number) =>
          spread === "1 customer" ? hotToken : tokens[(worker * 7919 + iteration * 104_729) % tokens.length]!;
        const conflictsBefore = await scrapeConflicts();
        const cpuBefore = { server: serverCpuSeconds(server.pid!), postgres: postgresCpuSeconds(), client: process.cpuUsage() };
        const run = await drive(concurrency, (worker, iteration) => apiCycle(pick(worker, iteration)));
        const client = process.cpuUsage(cpuBefore.client);
        const cpuSeconds = serverCpuSeconds(server.pid!) - cpuBefore.server;
        const postgresSeconds = postgresCpuSeconds() - cpuBefore.postgres;
        const result = summarise("api", spread, concurrency, run, (await scrapeConflicts()) - conflictsBefore);
        const perCycle = (seconds: number) => round((seconds * 1000) / Math.max(1, run.cycles));
        result.cpuMsPerCycle = perCycle(cpuSeconds);
        // Where the machine's cores went: the server, PostgreSQL, and this load generator.
        result.cpuShares = {
          postgresMsPerCycle: perCycle(postgresSeconds),
          clientMsPerCycle: perCycle((client.user + client.system) / 1e6),
          coresBusy: round((cpuSeconds + postgresSeconds + (client.user + client.system) / 1e6) / run.seconds),
        };
        results.push(result);
      }
    }

    if (countStatements) await printStatementCounts(databaseUrl, results.reduce((sum, result) => sum + result.cycles, 0));
    const sqlPool = new pg.Pool({ connectionString: databaseUrl, max: Math.max(...concurrencies) });
    try {
      for (const spread of spreads) {
        for (const concurrency of concurrencies) {
          const pick = (worker: number, iteration: number) =>
            spread === "1 customer" ? customerIds[0]! : customerIds[(worker * 7919 + iteration * 104_729) % customerIds.length]!;
          const cpuBefore = process.cpuUsage();
          const run = await drive(concurrency, async (worker, iteration) => {
            const result = await sqlPool.query(sqlCycle, [pick(worker, iteration), actualSeconds, reservedSeconds]);
            return result.rowCount === 2;
          });
          const cpu = process.cpuUsage(cpuBefore);
          const result = summarise("sql", spread, concurrency, run, null);
          result.cpuMsPerCycle = round((cpu.user + cpu.system) / 1000 / Math.max(1, run.cycles));
          results.push(result);
        }
      }
    } finally {
      await sqlPool.end();
    }
    const rows = report(results);
    save(rows, results, await activationStorms(staff, customerIds));
  } finally {
    server?.kill("SIGINT");
    // The server drains and exits; a CPU profile is written as it does.
    await new Promise((resolve) => (server && server.exitCode === null ? server.once("exit", resolve) : resolve(undefined)));
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

function report(results: Result[]) {
  const rows = results
    .filter((result) => result.target === "api")
    .map((api) => {
      const sql = results.find((result) => result.target === "sql" && result.spread === api.spread && result.concurrency === api.concurrency);
      const ratio = sql ? Math.round((api.cyclesPerSecond / sql.cyclesPerSecond) * 1000) / 1000 : null;
      return { ...api, sqlCyclesPerSecond: sql?.cyclesPerSecond ?? null, sqlP99Ms: sql?.p99Ms ?? null, sqlClientCpuMsPerCycle: sql?.cpuMsPerCycle ?? null, apiToSqlRatio: ratio };
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
      "server cpu ms/cycle": row.cpuMsPerCycle,
      "pg cpu ms/cycle": row.cpuShares?.postgresMsPerCycle,
      "client cpu ms/cycle": row.cpuShares?.clientMsPerCycle,
      "cores busy": row.cpuShares?.coresBusy,
      errors: row.errors,
      "sql cycles/s": row.sqlCyclesPerSecond,
      "sql p99 ms": row.sqlP99Ms,
      "sql client cpu ms/cycle": row.sqlClientCpuMsPerCycle,
      "api/sql": row.apiToSqlRatio,
    })),
  );
  return rows;
}

type ReportRow = ReturnType<typeof report>[number];
type StormRow = Awaited<ReturnType<typeof activationStorms>>[number];

/** The run in bench/results/latest.json, with the figures issue 15 tracks named at the top. */
function save(rows: ReportRow[], results: Result[], storms: StormRow[]): void {
  const api = (spread: string, concurrency: number) => rows.find((row) => row.spread === spread && row.concurrency === concurrency);
  const spread64 = api(`${spreadCustomers} customers`, 64);
  const hot64 = api("1 customer", 64);
  const summary = {
    workers: serverWorkers,
    api_sql_ratio_64_spread: spread64?.apiToSqlRatio ?? null,
    hot_vs_spread_64: spread64 && hot64 ? round(hot64.cyclesPerSecond / spread64.cyclesPerSecond) : null,
    server_cpu_ms_per_cycle: spread64?.cpuMsPerCycle ?? null,
    p99_ms_64_spread: spread64?.p99Ms ?? null,
    activation_one_key_p99_ms: storms[0]?.["p99 ms"] ?? null,
    retries_per_cycle_64_hot: hot64?.retriesPerCycle ?? null,
    sql_client_cpu_ms_per_cycle_64_spread: spread64?.sqlClientCpuMsPerCycle ?? null,
  };
  const directory = path.join(root, "bench", "results");
  fs.mkdirSync(directory, { recursive: true });
  const file = path.join(directory, "latest.json");
  fs.writeFileSync(file, JSON.stringify({ ...summary, measuredAt: new Date().toISOString(), scenarioSeconds, rows, results, activationStorms: storms }, null, 2));
  console.log(`\n${JSON.stringify(summary)}\nresults written to ${path.relative(root, file)}`);
}

const activateMutation = `mutation A($input: ActivateLicenseInput!) { activateLicense(input: $input) { alreadyActivated customerId } }`;

async function activateOnce(input: Record<string, unknown>): Promise<{ ms: number; first: boolean | undefined; error: string | undefined }> {
  const begun = performance.now();
  const response = await graphql("", activateMutation, { input });
  return { ms: performance.now() - begun, first: response.data ? !response.data.activateLicense.alreadyActivated : undefined, error: response.errors?.[0]?.extensions?.code };
}

/** 100 simultaneous activations of one key, then of 100 keys (each with its own device). */
async function activationStorms(staff: string, customerIds: string[]) {
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
  return rows;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
