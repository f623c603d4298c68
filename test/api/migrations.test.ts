// Migrations that move data keep it: a database built with the migrations before the move,
// holding balances, reservations and licenses, reads the same after the rest are applied.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { createDatabase, dropDatabase, withDatabase } from "../../src/platform/database-admin";
import { serverUrlVariable } from "../support/test-database";

const migrationsDirectory = path.resolve(__dirname, "..", "..", "prisma", "migrations");
const firstMigrationThatMovesBalances = "20261127000000_credit_balance";

const migrations = fs
  .readdirSync(migrationsDirectory, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

let databaseUrl: string;
let sql: pg.Client;

beforeAll(async () => {
  databaseUrl = withDatabase(process.env[serverUrlVariable]!, `splice_migrations_${crypto.randomBytes(4).toString("hex")}`);
  await createDatabase(databaseUrl);
  sql = new pg.Client({ connectionString: databaseUrl });
  sql.on("error", () => undefined);
  await sql.connect();
});

afterAll(async () => {
  await sql.end();
  await dropDatabase(databaseUrl);
});

async function apply(names: string[]): Promise<void> {
  for (const name of names) await sql.query(fs.readFileSync(path.join(migrationsDirectory, name, "migration.sql"), "utf8"));
}

it("moves every balance to credit_balance, then into one INITIAL grant holding what reservations hold, and gives every license its owner's tier, changing nothing else", async () => {
  const split = migrations.indexOf(firstMigrationThatMovesBalances);
  expect(split).toBeGreaterThan(0);
  await apply(migrations.slice(0, split));

  const insertCustomer = async (email: string, tier: string, remaining: number, reserved: number) =>
    (await sql.query("INSERT INTO customer (email, tier, seconds_remaining, seconds_reserved) VALUES ($1, $2::\"Tier\", $3, $4) RETURNING id", [email, tier, remaining, reserved])).rows[0].id as string;
  const pro = await insertCustomer("pro@example.com", "PRO", 4000, 600);
  const starter = await insertCustomer("starter@example.com", "STARTER", 0, 0);
  await sql.query("INSERT INTO ledger_entry (customer_id, kind, delta_seconds, balance_after, actor) VALUES ($1, 'GRANT', 4600, 4600, 'staff:test')", [pro]);
  await sql.query(
    "INSERT INTO credit_reservation (customer_id, endpoint, reserved_seconds, actor, expires_at) VALUES ($1, 'render', 600, 'customer:test', now() + interval '1 hour')",
    [pro],
  );
  await sql.query("INSERT INTO license (customer_id, key) VALUES ($1, 'SPLICE-ABCD-EFGH-JKMN'), ($2, 'SPLICE-PQRS-TUVW-XYZ2')", [pro, starter]);

  await apply(migrations.slice(split));

  const balances = await sql.query("SELECT customer_id, seconds_remaining, seconds_reserved FROM credit_balance ORDER BY seconds_remaining DESC");
  expect(balances.rows).toEqual([
    { customer_id: pro, seconds_remaining: 4000, seconds_reserved: 600 },
    { customer_id: starter, seconds_remaining: 0, seconds_reserved: 0 },
  ]);
  const columns = await sql.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'customer' AND column_name LIKE 'seconds_%'");
  expect(columns.rows).toEqual([]);
  const licenses = await sql.query("SELECT customer_id, tier::text AS tier FROM license ORDER BY key");
  expect(licenses.rows).toEqual([
    { customer_id: pro, tier: "PRO" },
    { customer_id: starter, tier: "STARTER" },
  ]);
  expect((await sql.query("SELECT count(*)::int AS n FROM ledger_entry")).rows[0].n).toBe(1);
  expect((await sql.query("SELECT count(*)::int AS n FROM credit_reservation WHERE status = 'ACTIVE'")).rows[0].n).toBe(1);

  const grants = await sql.query(
    `SELECT customer_id, source::text AS source, granted_seconds, remaining_seconds, held_seconds, ledger_opening_seconds, expires_at
     FROM credit_grant`,
  );
  expect(grants.rows).toEqual([
    { customer_id: pro, source: "INITIAL", granted_seconds: 4600, remaining_seconds: 4000, held_seconds: 600, ledger_opening_seconds: 4000, expires_at: null },
  ]);
  const holds = await sql.query(
    "SELECT r.customer_id, h.held_seconds FROM credit_reservation_hold h JOIN credit_reservation r ON r.id = h.reservation_id",
  );
  expect(holds.rows).toEqual([{ customer_id: pro, held_seconds: 600 }]);
});
