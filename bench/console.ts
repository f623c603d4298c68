// `npm run bench:console`: do anonymous loads of the staff console slow the API down for
// everyone else? Measures the latency of small GraphQL requests from 4 clients, first alone,
// then while 16 browsers-worth of clients load the console page over and over.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createDatabase, dropDatabase, migrateDatabase } from "../src/platform/database-admin";
import { startEmbeddedPostgres } from "../src/platform/embedded-postgres";
import { percentile, waitForReady } from "./server";
import { buildServer, serverArguments } from "../scripts/server-command";

const root = path.resolve(__dirname, "..");
const port = Number(process.env.BENCH_PORT ?? 4101);
const pgPort = Number(process.env.BENCH_PG_PORT ?? 54350);
const phaseSeconds = Number(process.env.BENCH_SECONDS ?? 5);
const apiClients = 4;
const consoleClients = 16;
const p99TargetMs = 50;

interface Phase {
  requests: number;
  p50Ms: number;
  p99Ms: number;
  consoleLoads: number;
}


async function apiClient(until: number, latencies: number[]): Promise<void> {
  while (Date.now() < until) {
    const started = performance.now();
    const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    await response.text();
    latencies.push(performance.now() - started);
  }
}

async function consoleClient(until: number, loads: { count: number }): Promise<void> {
  while (Date.now() < until) {
    const response = await fetch(`http://127.0.0.1:${port}/graphql`, { headers: { accept: "text/html", "accept-encoding": "gzip" } });
    await response.arrayBuffer();
    loads.count += 1;
  }
}

async function phase(withConsoleLoads: boolean): Promise<Phase> {
  const until = Date.now() + phaseSeconds * 1000;
  const latencies: number[] = [];
  const loads = { count: 0 };
  await Promise.all([
    ...Array.from({ length: apiClients }, () => apiClient(until, latencies)),
    ...(withConsoleLoads ? Array.from({ length: consoleClients }, () => consoleClient(until, loads)) : []),
  ]);
  const sorted = latencies.sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 10) / 10;
  return { requests: sorted.length, p50Ms: round(percentile(sorted, 0.5)), p99Ms: round(percentile(sorted, 0.99)), consoleLoads: loads.count };
}

async function main(): Promise<void> {
  buildServer();
  const cluster = await startEmbeddedPostgres({ dataDirectory: path.join(root, ".data", "bench-console-postgres"), port: pgPort, user: "splice", password: "splice" });
  const databaseUrl = cluster.urlFor("splice_bench_console");
  let server: ChildProcess | undefined;
  try {
    await dropDatabase(databaseUrl);
    await createDatabase(databaseUrl);
    await migrateDatabase(databaseUrl);
    const environment = { ...process.env, NODE_ENV: "development", DATABASE_URL: databaseUrl, PORT: String(port), LOG_LEVEL: "warn" };
    server = spawn(process.execPath, serverArguments(), { cwd: root, env: environment, stdio: "inherit" });
    await waitForReady(server, port);
    // The first load builds and compresses the page; that one-off cost is not what is measured.
    await fetch(`http://127.0.0.1:${port}/graphql`, { headers: { accept: "text/html", "accept-encoding": "gzip" } }).then((response) => response.arrayBuffer());
    const alone = await phase(false);
    const withLoads = await phase(true);
    console.log(`${apiClients} API clients sending { __typename }, ${phaseSeconds} s each phase`);
    console.table({ alone, [`with ${consoleClients} console loaders`]: withLoads });
    console.log(`p99 with console loads: ${withLoads.p99Ms} ms (target under ${p99TargetMs} ms)`);
  } finally {
    server?.kill("SIGTERM");
    if (server) await new Promise((resolve) => server!.once("exit", resolve));
    await cluster.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
