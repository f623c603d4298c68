// Creating databases and applying migrations: used by `npm start`, the test setup and the
// tooling scripts, never by request handling.
import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { projectRoot } from "./project-root";
import { promisify } from "node:util";
import pg from "pg";

const execFileAsync = promisify(execFile);
const migrateTimeoutMs = 120_000;
const databaseNamePattern = /^[a-z_][a-z0-9_]{0,62}$/;

function assertDatabaseName(name: string): void {
  if (!databaseNamePattern.test(name)) throw new Error(`unsafe database name: ${name}`);
}

/** The same server, another database: the maintenance database `postgres` by default. */
export function withDatabase(url: string, databaseName = "postgres"): string {
  const parsed = new URL(url);
  parsed.pathname = `/${databaseName}`;
  return parsed.toString();
}

export function databaseNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ""));
}

function withAdminClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(withDatabase(url), work);
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  // A server that goes away mid-command fails the command, which reports it; without a
  // listener the client would also emit an 'error' that ends the process.
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function databaseExists(url: string): Promise<boolean> {
  const name = databaseNameOf(url);
  return withAdminClient(url, async (client) => {
    const result = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    return result.rowCount === 1;
  });
}

/** Creates the database named by `url` unless it exists, optionally as a copy of `template`. */
export async function createDatabase(url: string, template?: string): Promise<void> {
  const name = databaseNameOf(url);
  assertDatabaseName(name);
  if (template) assertDatabaseName(template);
  if (await databaseExists(url)) return;
  await withAdminClient(url, async (client) => {
    const templateClause = template ? ` TEMPLATE "${template}"` : "";
    await client.query(`CREATE DATABASE "${name}"${templateClause}`);
  });
}

export async function dropDatabase(url: string): Promise<void> {
  const name = databaseNameOf(url);
  assertDatabaseName(name);
  await withAdminClient(url, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

const migrationsDirectory = path.join(projectRoot, "prisma", "migrations");

/** The committed migrations, by name, with the checksum Prisma records for each (sha256 of its SQL). */
function committedMigrations(): Map<string, string> {
  const names = fs.readdirSync(migrationsDirectory, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  return new Map(names.map((name) => [name, crypto.createHash("sha256").update(fs.readFileSync(path.join(migrationsDirectory, name, "migration.sql"))).digest("hex")]));
}

/** What the database has of this release's migrations. */
export interface MigrationState {
  /** Committed migrations it has not applied (none finished, or only rolled back): all of them without a migration table. */
  pending: string[];
  /**
   * Applied from another text than the committed one (edited since, or checked out with other
   * line endings): `prisma migrate deploy` does not apply them again; worth a warning only.
   */
  changed: string[];
}

/**
 * The database's migration state in one query on one connection (the migration table is found
 * on the connection's search_path, as Prisma finds it). Migrations the database has and this
 * release does not know (a newer release's) are not its business.
 */
export async function migrationState(url: string): Promise<MigrationState> {
  const committed = committedMigrations();
  const applied = await withClient(url, async (client) => {
    const table = await client.query<{ present: boolean }>("SELECT to_regclass('_prisma_migrations') IS NOT NULL AS present");
    if (!table.rows[0]!.present) return new Map<string, string>();
    const rows = await client.query<{ migration_name: string; checksum: string }>(
      "SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL",
    );
    return new Map(rows.rows.map((row) => [row.migration_name, row.checksum]));
  });
  const names = [...committed.keys()].sort();
  return {
    pending: names.filter((name) => !applied.has(name)),
    changed: names.filter((name) => applied.has(name) && applied.get(name) !== committed.get(name)),
  };
}

/** Applies every committed migration with `prisma migrate deploy` (offline WASM engine). */
export async function migrateDatabase(url: string): Promise<void> {
  const prismaCli = require.resolve("prisma/build/index.js");
  try {
    await execFileAsync(
      process.execPath,
      [
        "-r",
        path.join(projectRoot, "scripts", "unref-long-timers.cjs"),
        prismaCli,
        "migrate",
        "deploy",
        "--config",
        path.join(projectRoot, "prisma", "prisma.config.ts"),
      ],
      {
        cwd: projectRoot,
        env: { ...process.env, DATABASE_URL: url, CHECKPOINT_DISABLE: "1", PRISMA_HIDE_UPDATE_MESSAGE: "1" },
        timeout: migrateTimeoutMs,
      },
    );
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`prisma migrate deploy failed: ${failure.stderr || failure.stdout || failure.message}`);
  }
}
