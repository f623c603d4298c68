// npm run bench: reserve+confirm cycles over real HTTP against the real server (a separate
// process, run as production runs it, on its own embedded PostgreSQL), at several
// concurrencies, spread over many customers and all on one; then, in the same sitting, the
// same cycles against the design's floor (bench/floor-server.ts, the smallest server of the
// same design, on its own database of the same schema) and as one SQL statement through `pg`;
// then an open-loop scenario (a fixed arrival rate) against both servers, and the activation
// storms. Prints tables and writes bench/results/latest.json.
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../src/config";
import { mintToken } from "../src/platform/auth";
import { createDatabase, dropDatabase, migrateDatabase, withDatabase } from "../src/platform/database-admin";
import { startEmbeddedPostgres } from "../src/platform/embedded-postgres";
import { percentile, waitForReady } from "./server";
import { buildServer, serverArguments } from "../scripts/server-command";

const root = path.resolve(__dirname, "..");
const scenarioSeconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrencies = (process.env.BENCH_CONCURRENCY ?? "1,16,64").split(",").map(Number);
const spreadCustomers = Number(process.env.BENCH_CUSTOMERS ?? 1000);
const port = Number(process.env.BENCH_PORT ?? 4100);
const floorPort = Number(process.env.BENCH_FLOOR_PORT ?? 4101);
const pgPort = Number(process.env.BENCH_PG_PORT ?? 54349);
const openRatePerSecond = Number(process.env.BENCH_OPEN_RATE ?? 100);
const openSeconds = Number(process.env.BENCH_OPEN_SECONDS ?? 10);
// Set: the server writes a V8 CPU profile there on exit (`npm run bench:profile -- <dir>` sums it by layer).
const profileDirectory = process.env.BENCH_PROFILE_DIR;
// Set: the top statements by PostgreSQL's total time over the API scenarios are printed.
const printStatements = process.env.BENCH_PG_STATEMENTS === "1";
// The server's WEB_CONCURRENCY.
const serverWorkers = Number(process.env.BENCH_WORKERS ?? 1);
// The service's DATABASE_PREPARED_STATEMENTS ("false": every statement parsed and planned anew, as behind PgBouncer 1.18).
const preparedStatements = process.env.BENCH_PREPARED_STATEMENTS ?? "true";
const clockTicksPerSecond = 100;
const customerSeconds = 100_000_000;
const reservedSeconds = 60;
const actualSeconds = 45;
// An open-loop request still waiting after this is counted as an error.
const openCycleTimeoutMs = 30_000;

type TargetName = "api" | "floor" | "sql";

/** A server under test: the service, or the floor. */
interface Target {
  name: Exclude<TargetName, "sql">;
  process: ChildProcess;
  baseUrl: string;
  databaseName: string;
  tokens: string[];
  /** Transactions it retried after a conflict, so far. */
  conflicts(): Promise<number>;
}

interface Result {
  target: TargetName;
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
  /** Servers: their own processes' CPU per cycle, as the kernel counts it; SQL: the bench client's. */
  cpuMsPerCycle: number;
  /** Servers: PostgreSQL's (ended backends included) and the load generator's CPU per cycle. */
  postgresCpuMsPerCycle: number | null;
  clientCpuMsPerCycle: number | null;
  /** Servers: statements PostgreSQL ran per cycle in their database (pg_stat_statements). */
  statementsPerCycle: number | null;
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

/**
 * Open loop: a cycle starts every 1/rate seconds whatever the ones before are doing, so that a
 * slow answer does not slow the arrivals (no coordinated omission); a latency counts from the
 * cycle's scheduled start.
 */
async function driveOpen(ratePerSecond: number, seconds: number, cycle: (index: number) => Promise<boolean>) {
  const latenciesMs: number[] = [];
  let errors = 0;
  const started = performance.now();
  const total = Math.round(ratePerSecond * seconds);
  const inFlight: Promise<void>[] = [];
  for (let index = 0; index < total; index += 1) {
    const scheduledMs = started + (index * 1000) / ratePerSecond;
    const waitMs = scheduledMs - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    inFlight.push(
      withTimeout(cycle(index), openCycleTimeoutMs).then((ok) => {
        if (ok) latenciesMs.push(performance.now() - scheduledMs);
        else errors += 1;
      }),
    );
  }
  await Promise.all(inFlight);
  latenciesMs.sort((a, b) => a - b);
  return { cycles: latenciesMs.length, errors, seconds: (performance.now() - started) / 1000, latenciesMs };
}

function withTimeout(work: Promise<boolean>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  return Promise.race([work.catch(() => false), expired]).finally(() => clearTimeout(timer));
}

async function graphql(baseUrl: string, token: string, query: string, variables: Record<string, unknown>): Promise<any> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

const reserveMutation = `mutation R($input: ReserveCreditsInput!) { reserveCredits(input: $input) { reservation { id } } }`;
const confirmMutation = `mutation C($input: ConfirmReservationInput!) { confirmReservation(input: $input) { balance { secondsRemaining } } }`;

async function apiCycle(baseUrl: string, token: string): Promise<boolean> {
  const reserved = await graphql(baseUrl, token, reserveMutation, { input: { estimatedSeconds: reservedSeconds, endpoint: "bench" } });
  const id = reserved.data?.reserveCredits?.reservation?.id;
  if (!id) return false;
  const confirmed = await graphql(baseUrl, token, confirmMutation, { input: { reservationId: id, actualSeconds } });
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
 * The service's transaction conflicts, summed over its workers: each worker's /metrics counts its
 * own (and names its pid), so fresh connections are opened until every worker has answered.
 */
async function scrapeConflicts(baseUrl: string, metricsToken: string): Promise<number> {
  const byPid = new Map<string, number>();
  for (let attempt = 0; attempt < 20 * serverWorkers && byPid.size < serverWorkers; attempt += 1) {
    const response = await fetch(`${baseUrl}/metrics`, { headers: { connection: "close", authorization: `Bearer ${metricsToken}` } });
    const text = await response.text();
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

/** CPU seconds (user + system) the kernel counted for a server: its process and its workers. */
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

/** Statements counted so far in one database (pg_stat_statements, read from the maintenance database). */
function statementCount(controlUrl: string, databaseName: string): Promise<number> {
  return withClient(controlUrl, async (client) => {
    const result = await client.query<{ calls: string | null }>(
      "SELECT sum(calls)::text AS calls FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
      [databaseName],
    );
    return Number(result.rows[0]?.calls ?? 0);
  });
}

/** PostgreSQL's own time per statement over the API scenarios, per reserve+confirm cycle. */
async function printStatementCounts(controlUrl: string, databaseName: string, cycles: number): Promise<void> {
  const rows = await withClient(controlUrl, async (client) =>
    (await client.query(
      `SELECT calls, total_exec_time, total_plan_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)
       ORDER BY total_exec_time DESC LIMIT 20`,
      [databaseName],
    )).rows as { calls: string; total_exec_time: number; total_plan_time: number; query: string }[],
  );
  const totalMs = rows.reduce((sum, row) => sum + row.total_exec_time, 0);
  console.log(`\nPostgreSQL statements over the API scenarios (${cycles} cycles; ${(totalMs / cycles).toFixed(2)} ms of execution per cycle in the top 20):`);
  console.table(rows.map((row) => ({ "calls/cycle": (Number(row.calls) / cycles).toFixed(2), "exec ms/cycle": (row.total_exec_time / cycles).toFixed(3), "mean ms": (row.total_exec_time / Number(row.calls)).toFixed(3), query: row.query })));
}

/** What the service needs to start in production, made up for this run (never in the repository). */
function productionEnvironment(databaseUrl: string): Record<string, string> {
  const secret = () => crypto.randomBytes(32).toString("base64url");
  return {
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    AUTH_JWT_SECRET: secret(),
    METRICS_TOKEN: secret(),
    STRIPE_SECRET_KEY: `sk_test_${secret()}`,
    STRIPE_WEBHOOK_SECRET: `whsec_${secret()}`,
    // Never reached: the outbox is off, and nothing else mails during the bench.
    SMTP_URL: `smtp://bench-${secret()}@127.0.0.1:1`,
    LICENSE_SIGNING_KEYS: crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    SWEEPER_ENABLED: "false",
    OUTBOX_ENABLED: "false",
    WEB_CONCURRENCY: String(serverWorkers),
    DATABASE_PREPARED_STATEMENTS: preparedStatements,
    // 64 clients on one customer hold up to 64 reservations at once; the default limit is 50.
    ACTIVE_RESERVATIONS_PER_CUSTOMER_MAX: "100",
  };
}

/** The service as production runs it: compiled, NODE_ENV=production, its log lines written (to BENCH_SERVER_LOG, or /dev/null). */
async function startService(databaseUrl: string): Promise<{ target: Target; staff: string; environment: Record<string, string> }> {
  const environment = productionEnvironment(databaseUrl);
  const config = loadConfig(environment);
  const profiling = profileDirectory ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDirectory)}`] : [];
  const logSink = fs.openSync(process.env.BENCH_SERVER_LOG ?? "/dev/null", "w");
  const child = spawn(process.execPath, serverArguments(profiling), { cwd: root, env: { ...process.env, ...environment }, stdio: ["ignore", logSink, "inherit"] });
  await waitForReady(child, port);
  const baseUrl = `http://127.0.0.1:${port}`;
  const staff = mintToken(config.auth, "staff", "bench", 3600);
  const customerIds: string[] = [];
  for (let batch = 0; batch < spreadCustomers; batch += 50) {
    const created = await Promise.all(
      Array.from({ length: Math.min(50, spreadCustomers - batch) }, (_, index) =>
        graphql(baseUrl, staff, `mutation N($input: CreateCustomerInput!) { createCustomer(input: $input) { id } }`, {
          input: { email: `bench-${batch + index}@example.com`, initialSeconds: customerSeconds },
        }),
      ),
    );
    customerIds.push(...created.map((response) => response.data.createCustomer.id as string));
  }
  const tokens = customerIds.map((id) => mintToken(config.auth, "customer", id, 3600));
  const conflicts = () => scrapeConflicts(baseUrl, environment.METRICS_TOKEN!);
  return { target: { name: "api", process: child, baseUrl, databaseName: new URL(databaseUrl).pathname.slice(1), tokens, conflicts }, staff, environment };
}

/** The floor on a database of its own (same migrations, fillfactor 70 on the balances), with as many customers. */
async function startFloor(databaseUrl: string, environment: Record<string, string>): Promise<Target> {
  await dropDatabase(databaseUrl);
  await createDatabase(databaseUrl);
  await migrateDatabase(databaseUrl);
  const customerIds = await withClient(databaseUrl, async (client) => {
    await client.query("ALTER TABLE credit_balance SET (fillfactor = 70)");
    await client.query("BEGIN");
    const created = await client.query<{ customer_id: string }>(
      `WITH created AS (INSERT INTO customer (email) SELECT 'floor-' || n || '@example.com' FROM generate_series(1, $1::int) AS n RETURNING id)
       INSERT INTO credit_balance (customer_id, seconds_remaining) SELECT id, $2 FROM created RETURNING customer_id`,
      [spreadCustomers, customerSeconds],
    );
    await client.query("COMMIT");
    return created.rows.map((row) => row.customer_id);
  });
  const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "floor-server.ts")], {
    cwd: root,
    env: { ...process.env, FLOOR_DATABASE_URL: databaseUrl, FLOOR_PORT: String(floorPort), FLOOR_JWT_SECRET: environment.AUTH_JWT_SECRET },
    stdio: "inherit",
  });
  await waitForReady(child, floorPort);
  const baseUrl = `http://127.0.0.1:${floorPort}`;
  const config = loadConfig(environment);
  const tokens = customerIds.map((id) => mintToken(config.auth, "customer", id, 3600));
  const conflicts = async () => ((await (await fetch(`${baseUrl}/counters`)).json()) as { conflicts: number }).conflicts;
  return { name: "floor", process: child, baseUrl, databaseName: new URL(databaseUrl).pathname.slice(1), tokens, conflicts };
}

interface Sitting {
  controlUrl: string;
  spreads: string[];
}

const pickToken = (tokens: string[], spread: string) => (worker: number, iteration: number) =>
  spread === "1 customer" ? tokens[0]! : tokens[(worker * 7919 + iteration * 104_729) % tokens.length]!;

/** One closed-loop scenario against a server, with its CPU, statements and retries per cycle. */
async function measureServer(target: Target, sitting: Sitting, spread: string, concurrency: number): Promise<Result> {
  const pick = pickToken(target.tokens, spread);
  const conflictsBefore = await target.conflicts();
  const statementsBefore = await statementCount(sitting.controlUrl, target.databaseName);
  const cpuBefore = { server: serverCpuSeconds(target.process.pid!), postgres: postgresCpuSeconds(), client: process.cpuUsage() };
  const run = await drive(concurrency, (worker, iteration) => apiCycle(target.baseUrl, pick(worker, iteration)));
  const client = process.cpuUsage(cpuBefore.client);
  const serverSeconds = serverCpuSeconds(target.process.pid!) - cpuBefore.server;
  const postgresSeconds = postgresCpuSeconds() - cpuBefore.postgres;
  const statements = (await statementCount(sitting.controlUrl, target.databaseName)) - statementsBefore;
  const conflicts = (await target.conflicts()) - conflictsBefore;
  const perCycle = (value: number) => round(value / Math.max(1, run.cycles));
  return {
    ...summarise(target.name, spread, concurrency, run, perCycle(conflicts)),
    cpuMsPerCycle: perCycle(serverSeconds * 1000),
    postgresCpuMsPerCycle: perCycle(postgresSeconds * 1000),
    clientCpuMsPerCycle: perCycle(((client.user + client.system) / 1e6) * 1000),
    statementsPerCycle: perCycle(statements),
  };
}

async function measureSql(pool: pg.Pool, customerIds: string[], spread: string, concurrency: number): Promise<Result> {
  const pick = (worker: number, iteration: number) => (spread === "1 customer" ? customerIds[0]! : customerIds[(worker * 7919 + iteration * 104_729) % customerIds.length]!);
  const cpuBefore = process.cpuUsage();
  const run = await drive(concurrency, async (worker, iteration) => (await pool.query(sqlCycle, [pick(worker, iteration), actualSeconds, reservedSeconds])).rowCount === 2);
  const cpu = process.cpuUsage(cpuBefore);
  return { ...summarise("sql", spread, concurrency, run, null), cpuMsPerCycle: round((cpu.user + cpu.system) / 1000 / Math.max(1, run.cycles)), postgresCpuMsPerCycle: null, clientCpuMsPerCycle: null, statementsPerCycle: 1 };
}

/** The open-loop scenario against a server: p50 and p99 at a steady arrival rate. */
async function measureOpenLoop(target: Target, sitting: Sitting): Promise<Result> {
  const spread = sitting.spreads[0]!;
  const pick = pickToken(target.tokens, spread);
  const cpuBefore = { server: serverCpuSeconds(target.process.pid!), postgres: postgresCpuSeconds() };
  const run = await driveOpen(openRatePerSecond, openSeconds, (index) => apiCycle(target.baseUrl, pick(index % 997, index)));
  const perCycle = (seconds: number) => round((seconds * 1000) / Math.max(1, run.cycles));
  return {
    ...summarise(target.name, `${spread}, open loop ${openRatePerSecond}/s`, 0, run, null),
    cpuMsPerCycle: perCycle(serverCpuSeconds(target.process.pid!) - cpuBefore.server),
    postgresCpuMsPerCycle: perCycle(postgresCpuSeconds() - cpuBefore.postgres),
    clientCpuMsPerCycle: null,
    statementsPerCycle: null,
  };
}

async function main(): Promise<void> {
  buildServer();
  const cluster = await startEmbeddedPostgres({
    dataDirectory: path.join(root, ".data", "bench-postgres"),
    port: pgPort,
    user: "splice",
    password: "splice",
    settings: ["shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=top"],
  });
  const databaseUrl = cluster.urlFor("splice_bench");
  const sitting: Sitting = { controlUrl: cluster.urlFor("postgres"), spreads: [`${spreadCustomers} customers`, "1 customer"] };
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  let floor: Target | undefined;
  try {
    await dropDatabase(databaseUrl);
    await createDatabase(databaseUrl);
    await migrateDatabase(databaseUrl);
    await withClient(sitting.controlUrl, (client) => client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"));
    service = await startService(databaseUrl);
    floor = await startFloor(withDatabase(databaseUrl, "splice_bench_floor"), service.environment);
    const results: Result[] = [];
    for (const spread of sitting.spreads) {
      for (const concurrency of concurrencies) {
        results.push(await measureServer(service.target, sitting, spread, concurrency));
        results.push(await measureServer(floor, sitting, spread, concurrency));
      }
    }
    if (printStatements) await printStatementCounts(sitting.controlUrl, service.target.databaseName, results.filter((result) => result.target === "api").reduce((sum, result) => sum + result.cycles, 0));
    const openLoop = [await measureOpenLoop(service.target, sitting), await measureOpenLoop(floor, sitting)];
    const storms = await activationStorms(service.target.baseUrl, service.staff);
    // Last: the statement changes balances without their grants, which the service refuses to build on.
    results.push(...(await sqlBaseline(databaseUrl, service.target.tokens, sitting)));
    const rows = report(results, openLoop);
    save(rows, results, openLoop, storms);
  } finally {
    await stopServers([service?.target.process, floor?.process]);
    await cluster.stop();
  }
}

/** The SQL statement's cycles on the service's database, for the customers of its tokens. */
async function sqlBaseline(databaseUrl: string, tokens: string[], sitting: Sitting): Promise<Result[]> {
  const customerIds = tokens.map((token) => (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { sub: string }).sub);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: Math.max(...concurrencies) });
  try {
    const results: Result[] = [];
    for (const spread of sitting.spreads) for (const concurrency of concurrencies) results.push(await measureSql(pool, customerIds, spread, concurrency));
    return results;
  } finally {
    await pool.end();
  }
}

async function stopServers(servers: (ChildProcess | undefined)[]): Promise<void> {
  await Promise.all(
    servers.map(async (server) => {
      if (!server || server.exitCode !== null) return;
      // The service drains and exits; a CPU profile is written as it does.
      const exited = new Promise((resolve) => server.once("exit", resolve));
      server.kill("SIGINT");
      await exited;
    }),
  );
}

function summarise(target: TargetName, spread: string, concurrency: number, run: Awaited<ReturnType<typeof drive>>, retriesPerCycle: number | null) {
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
    retriesPerCycle,
  };
}

/** One row per scenario: the service beside the floor and the SQL statement. */
function report(results: Result[], openLoop: Result[]) {
  const find = (target: TargetName, spread: string, concurrency: number) => results.find((result) => result.target === target && result.spread === spread && result.concurrency === concurrency);
  const rows = results
    .filter((result) => result.target === "api")
    .map((api) => {
      const floor = find("floor", api.spread, api.concurrency)!;
      const sql = find("sql", api.spread, api.concurrency);
      const total = (result: Result) => round(result.cpuMsPerCycle + (result.postgresCpuMsPerCycle ?? 0));
      return {
        spread: api.spread,
        clients: api.concurrency,
        api: api,
        floor: floor,
        sqlCyclesPerSecond: sql?.cyclesPerSecond ?? null,
        floorRatio: round(api.cyclesPerSecond / floor.cyclesPerSecond),
        apiToSqlRatio: sql ? Math.round((api.cyclesPerSecond / sql.cyclesPerSecond) * 1000) / 1000 : null,
        cpuRatioToFloor: round(total(api) / total(floor)),
      };
    });
  console.log(`\nreserve+confirm cycles, ${scenarioSeconds} s per scenario: the service (two HTTP requests, two Serializable transactions), the floor (the same, minimal), and one SQL statement\n`);
  console.table(
    rows.map((row) => ({
      spread: row.spread,
      clients: row.clients,
      "api cycles/s": row.api.cyclesPerSecond,
      "floor cycles/s": row.floor.cyclesPerSecond,
      "sql cycles/s": row.sqlCyclesPerSecond,
      "api/floor": row.floorRatio,
      "api p99 ms": row.api.p99Ms,
      "floor p99 ms": row.floor.p99Ms,
      "cpu ms/cycle api (server+pg+client)": `${row.api.cpuMsPerCycle}+${row.api.postgresCpuMsPerCycle}+${row.api.clientCpuMsPerCycle}`,
      "cpu ms/cycle floor": `${row.floor.cpuMsPerCycle}+${row.floor.postgresCpuMsPerCycle}+${row.floor.clientCpuMsPerCycle}`,
      "cpu api/floor": row.cpuRatioToFloor,
      "statements/cycle api, floor": `${row.api.statementsPerCycle}, ${row.floor.statementsPerCycle}`,
      "retries/cycle api, floor": `${row.api.retriesPerCycle}, ${row.floor.retriesPerCycle}`,
      "errors api, floor": `${row.api.errors}, ${row.floor.errors}`,
    })),
  );
  console.log(`\nopen loop: ${openRatePerSecond} cycles/s offered for ${openSeconds} s over ${spreadCustomers} customers\n`);
  console.table(openLoop.map((result) => ({ target: result.target, "cycles/s": result.cyclesPerSecond, "p50 ms": result.p50Ms, "p99 ms": result.p99Ms, errors: result.errors, "cpu ms/cycle server+pg": `${result.cpuMsPerCycle}+${result.postgresCpuMsPerCycle}` })));
  return rows;
}

type ReportRow = ReturnType<typeof report>[number];
type StormRow = Awaited<ReturnType<typeof activationStorms>>[number];

/** The run in bench/results/latest.json, with the tracked figures named at the top. */
function save(rows: ReportRow[], results: Result[], openLoop: Result[], storms: StormRow[]): void {
  const row = (spread: string, concurrency: number) => rows.find((candidate) => candidate.spread === spread && candidate.clients === concurrency);
  const spread64 = row(`${spreadCustomers} customers`, 64);
  const hot64 = row("1 customer", 64);
  const totalCpu = (result: Result | undefined) => (result ? round(result.cpuMsPerCycle + (result.postgresCpuMsPerCycle ?? 0)) : null);
  const summary = {
    workers: serverWorkers,
    prepared_statements: preparedStatements,
    api_sql_ratio_64_spread: spread64?.apiToSqlRatio ?? null,
    hot_vs_spread_64: spread64 && hot64 ? round(hot64.api.cyclesPerSecond / spread64.api.cyclesPerSecond) : null,
    server_cpu_ms_per_cycle: spread64?.api.cpuMsPerCycle ?? null,
    p99_ms_64_spread: spread64?.api.p99Ms ?? null,
    activation_one_key_p99_ms: storms[0]?.["p99 ms"] ?? null,
    retries_per_cycle_64_hot: hot64?.api.retriesPerCycle ?? null,
    floor_cpu_ms_per_cycle_64_spread: totalCpu(spread64?.floor),
    cpu_ms_per_cycle_64_spread: totalCpu(spread64?.api),
    floor_ratio_64_spread: spread64?.floorRatio ?? null,
    statements_per_cycle: spread64?.api.statementsPerCycle ?? null,
    p99_ms_open_100: openLoop.find((result) => result.target === "api")?.p99Ms ?? null,
    floor_p99_ms_open_100: openLoop.find((result) => result.target === "floor")?.p99Ms ?? null,
  };
  const directory = path.join(root, "bench", "results");
  fs.mkdirSync(directory, { recursive: true });
  const file = path.join(directory, "latest.json");
  fs.writeFileSync(file, JSON.stringify({ ...summary, measuredAt: new Date().toISOString(), scenarioSeconds, rows, results, openLoop, activationStorms: storms }, null, 2));
  console.log(`\n${JSON.stringify(summary)}\nresults written to ${path.relative(root, file)}`);
}

const activateMutation = `mutation A($input: ActivateLicenseInput!) { activateLicense(input: $input) { alreadyActivated customerId } }`;

async function activateOnce(baseUrl: string, input: Record<string, unknown>): Promise<{ ms: number; first: boolean | undefined; error: string | undefined }> {
  const begun = performance.now();
  const response = await graphql(baseUrl, "", activateMutation, { input });
  return { ms: performance.now() - begun, first: response.data ? !response.data.activateLicense.alreadyActivated : undefined, error: response.errors?.[0]?.extensions?.code };
}

/** 100 simultaneous activations of one key, then of 100 keys (each with its own device). */
async function activationStorms(baseUrl: string, staff: string) {
  const stormSize = 100;
  const keys: string[] = [];
  // One key for the first storm, a hundred fresh ones for the second: licenses for new customers.
  for (let index = 0; index <= stormSize; index += 1) {
    const created = await graphql(baseUrl, staff, `mutation N($input: CreateCustomerInput!) { createCustomer(input: $input) { id } }`, { input: { email: `storm-${index}@example.com` } });
    const issued = await graphql(baseUrl, staff, `mutation I($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: created.data.createCustomer.id });
    keys.push(issued.data.issueLicense.license.key);
  }
  const storms = [
    { name: `${stormSize} activations of one key`, inputs: Array.from({ length: stormSize }, () => ({ key: keys[0] })) },
    { name: `${stormSize} keys, one device each`, inputs: keys.slice(1).map((key, index) => ({ key, device: { fingerprint: `bench-device-${index}` } })) },
  ];
  const rows = [];
  for (const storm of storms) {
    const started = performance.now();
    const outcomes = await Promise.all(storm.inputs.map((input) => activateOnce(baseUrl, input)));
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
