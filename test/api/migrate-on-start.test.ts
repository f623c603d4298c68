// Migrations at start cost one query when the database is up to date (no `prisma migrate
// deploy` child process), are applied when some are missing, and with MIGRATE_ON_START=false
// are only checked: the start is refused until `npm run migrate` has run.
import crypto from "node:crypto";
import { execFile, spawn } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { createDatabase, dropDatabase, migrationState, withDatabase } from "../../src/platform/database-admin";
import { freePort, serverUrlVariable, templateDatabaseName } from "../support/test-database";
import { serverArguments } from "../../scripts/server-command";

const execFileAsync = promisify(execFile);
const root = path.resolve(__dirname, "..", "..");
const startTimeoutMs = 60_000;

const scratchUrl = (label: string) => withDatabase(process.env[serverUrlVariable]!, `splice_${label}_${crypto.randomBytes(4).toString("hex")}`);

async function withScratchDatabase(label: string, template: string | undefined, work: (url: string) => Promise<void>): Promise<void> {
  const url = scratchUrl(label);
  await createDatabase(url, template);
  try {
    await work(url);
  } finally {
    await dropDatabase(url);
  }
}

/** Starts the server (dist/src/main.js, as npm start does) and waits until it serves /readyz or exits; then stops it. */
async function start(url: string, environment: Record<string, string>): Promise<{ ready: boolean; exitCode: number | null; output: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, serverArguments(), {
    cwd: root,
    env: { ...process.env, NODE_ENV: "test", DATABASE_URL: url, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", SWEEPER_ENABLED: "false", OUTBOX_ENABLED: "false", ...environment },
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  const deadline = Date.now() + startTimeoutMs;
  let ready = false;
  while (!ready && exitCode === undefined && Date.now() < deadline) {
    ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false);
    if (!ready) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (exitCode === undefined) child.kill("SIGTERM");
  return { ready, exitCode: await exited, output };
}

it("knows which migrations a database lacks, and which it applied from another text", async () => {
  await withScratchDatabase("pending", templateDatabaseName, async (url) => {
    expect(await migrationState(url)).toEqual({ pending: [], changed: [] });
    const sql = new pg.Client({ connectionString: url });
    sql.on("error", () => undefined);
    await sql.connect();
    try {
      const newest = await sql.query<{ migration_name: string }>("SELECT migration_name FROM _prisma_migrations ORDER BY migration_name DESC LIMIT 1");
      const name = newest.rows[0]!.migration_name;
      await sql.query("UPDATE _prisma_migrations SET checksum = 'edited' WHERE migration_name = $1", [name]);
      expect(await migrationState(url)).toEqual({ pending: [], changed: [name] });
      // One that failed half-way (finished_at unset) is pending: deploy then says why it cannot go on.
      await sql.query("UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = $1", [name]);
      expect((await migrationState(url)).pending).toEqual([name]);
    } finally {
      await sql.end();
    }
  });
  await withScratchDatabase("empty", undefined, async (url) => {
    expect((await migrationState(url)).pending.length).toBeGreaterThan(10);
  });
});

/** The advisory lock `prisma migrate deploy` takes first (its schema engine's, fixed). */
const prismaMigrateLockKey = 72707369;

it("starts on an up-to-date database without running prisma migrate deploy", async () => {
  await withScratchDatabase("uptodate", templateDatabaseName, async (url) => {
    // Held here, the lock would stop a deploy for its 10 s timeout and fail the start.
    const holder = new pg.Client({ connectionString: url });
    holder.on("error", () => undefined);
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock($1)", [prismaMigrateLockKey]);
      const { ready, output } = await start(url, {});
      expect(ready).toBe(true);
      expect(output).not.toContain("running prisma migrate deploy");
    } finally {
      await holder.end();
    }
  });
});

it("with MIGRATE_ON_START=false refuses a database that lacks migrations, and starts once npm run migrate applied them", async () => {
  await withScratchDatabase("rolling", undefined, async (url) => {
    const refused = await start(url, { MIGRATE_ON_START: "false" });
    expect(refused.ready).toBe(false);
    expect(refused.exitCode).toBe(1);
    expect(refused.output).toMatch(/Splice API failed to start: the database lacks \d+ migrations of this release \(.*\): run `npm run migrate` first/);

    const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", path.join(root, "scripts", "migrate.ts")], {
      cwd: root,
      env: { ...process.env, NODE_ENV: "test", DATABASE_URL: url, LOG_LEVEL: "warn" },
    });
    expect(stdout).toContain("migrations: the database has every migration of this release");
    expect((await migrationState(url)).pending).toEqual([]);

    const started = await start(url, { MIGRATE_ON_START: "false" });
    expect(started.ready).toBe(true);
  });
});

it("applies missing migrations at start by default", async () => {
  await withScratchDatabase("fresh", undefined, async (url) => {
    const { ready, output } = await start(url, {});
    expect(ready).toBe(true);
    expect(output).toContain("running prisma migrate deploy");
    expect((await migrationState(url)).pending).toEqual([]);
  });
});
