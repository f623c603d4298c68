// Rows are parsed where they enter: a row of another shape fails, naming its query.
import { z } from "zod";
import { Prisma } from "../../src/generated/prisma/client";
import { closeDatabase, createDatabase, databaseSettingsOf, Transactor } from "../../src/platform/database";
import { runnerOf } from "../../src/platform/direct-sql";
import { ServiceUnavailableError } from "../../src/platform/failures";
import { column, RowShapeError, selectRow, selectRows } from "../../src/platform/rows";
import { startTestServer, type TestServer } from "../support/test-server";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

it("parses rows into the declared shape, bigints and dates included", async () => {
  const row = z.object({ n: column.int, big: column.bigint, at: column.timestamp, note: column.text.nullable() });
  const rows = await selectRows(server.database, "test.shapes", row, Prisma.sql`SELECT 7::int AS n, 9007199254740993::bigint AS big, now() AS at, NULL::text AS note`);
  expect(rows).toEqual([{ n: 7, big: 9007199254740993n, at: expect.any(Date), note: null }]);
  expect(await selectRow(server.database, "test.none", row, Prisma.sql`SELECT 1 AS n WHERE false`)).toBeUndefined();
});

it("refuses a row of another shape, naming the query and the column", async () => {
  const expected = z.object({ id: column.int });
  const wrong = selectRows(server.database, "test.wrongShape", expected, Prisma.sql`SELECT 'not a number' AS id`);
  await expect(wrong).rejects.toBeInstanceOf(RowShapeError);
  await expect(selectRows(server.database, "test.wrongShape", expected, Prisma.sql`SELECT 'not a number' AS id`)).rejects.toThrow(/^test\.wrongShape: row 0 does not fit: id /);
});

describe("statements on pg directly (platform/direct-sql.ts)", () => {
  const kinds = Prisma.sql`SELECT 7::int AS small, 9007199254740993::bigint AS big, 12.50::numeric AS exact,
    '2026-11-27 03:04:05.678'::timestamp(3) AS clock, '2026-11-27 03:04:05.678+02'::timestamptz AS instant,
    '2026-11-27'::date AS day, '{"a": [1, "b"]}'::json AS doc, '{"c": null}'::jsonb AS bin, true AS yes,
    'text' AS words, '0b5b3f0e-8a43-4a4f-9a55-3f1f0f6b8c11'::uuid AS id, 'ACTIVE'::"ReservationStatus" AS status,
    NULL::timestamp(3) AS nothing`;

  it("returns what Prisma's $queryRaw returns, on the pool and inside a transaction", async () => {
    const throughPrisma: unknown[] = await server.database.$queryRaw(kinds);
    const anyRow = z.record(z.string(), z.unknown());
    expect(await selectRows(server.database, "test.kinds", anyRow, kinds)).toEqual(throughPrisma);
    const inTransaction = await server.services.transactor.serializable((tx) => {
      expect(runnerOf(tx)).toBeDefined();
      return selectRows(tx, "test.kinds", anyRow, kinds);
    });
    expect(inTransaction).toEqual(throughPrisma);
    expect(throughPrisma[0]).toMatchObject({ big: 9007199254740993n, clock: new Date("2026-11-27T03:04:05.678Z"), instant: new Date("2026-11-27T01:04:05.678Z") });
  });

  it("sends dates as UTC clock time, as the driver adapter does, and decimals as numbers", async () => {
    const at = new Date("2026-02-03T04:05:06.007Z");
    const row = z.object({ clock: column.timestamp, text: column.text, exact: column.text });
    const [read] = await selectRows(server.database, "test.parameters", row, Prisma.sql`
      SELECT ${at}::timestamp(3) AS clock, ${at}::timestamp(3)::text AS text, (${new Prisma.Decimal("12.50")}::numeric * 2)::text AS exact`);
    expect(read).toEqual({ clock: at, text: "2026-02-03 04:05:06.007", exact: "25.0" });
  });

  it("runs a transaction's statements on its own connection, at Serializable", async () => {
    // now() is when the transaction began; a statement inside one began later.
    const row = z.object({ pid: column.int, isolation: column.text, beganWithThisStatement: column.boolean });
    const probe = Prisma.sql`SELECT pg_backend_pid() AS pid, current_setting('transaction_isolation') AS isolation,
      now() = statement_timestamp() AS "beganWithThisStatement"`;
    const seen = await server.services.transactor.serializable(async (tx) => {
      expect(runnerOf(tx)).toBeDefined();
      await selectRows(tx, "test.first", z.object({ one: column.int }), Prisma.sql`SELECT 1 AS one`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const [direct] = await selectRows(tx, "test.probe", row, probe);
      const [prisma] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      return { direct, prismaPid: prisma!.pid };
    });
    expect(seen.direct).toEqual({ pid: seen.prismaPid, isolation: "serializable", beganWithThisStatement: false });
  });

  it("refuses a statement on a transaction that has ended", async () => {
    let escaped: Parameters<Parameters<typeof server.services.transactor.serializable>[0]>[0] | undefined;
    await server.services.transactor.serializable(async (tx) => {
      escaped = tx;
      return selectRows(tx, "test.inside", z.object({ one: column.int }), Prisma.sql`SELECT 1 AS one`);
    });
    await expect(selectRows(escaped!, "test.after", z.object({ one: column.int }), Prisma.sql`SELECT 1 AS one`)).rejects.toThrow(/transaction has ended/);
  });

  it("answers unavailable for a statement after Prisma rolled the transaction back at its timeout", async () => {
    const impatient = new Transactor(server.database, { ...server.config.transactions, timeoutMs: 200 });
    const late = impatient.serializable(async (tx) => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return selectRows(tx, "test.late", z.object({ one: column.int }), Prisma.sql`SELECT 1 AS one`);
    });
    await expect(late).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(impatient.counters.unavailable).toBe(1);
  });
});

describe("named prepared statements", () => {
  const preparedOnThisSession = Prisma.sql`SELECT name, statement FROM pg_prepared_statements ORDER BY name`;
  const row = z.object({ name: column.text, statement: column.text });
  const settings = (enabled: boolean, namesMax: number) => ({ ...databaseSettingsOf(server.config), poolSize: 1, preparedStatements: { enabled, namesMax } });

  it("prepares each text once per connection, up to the limit, and reuses it", async () => {
    const database = createDatabase(server.databaseUrl, settings(true, 2));
    try {
      for (let round = 0; round < 3; round += 1) {
        await selectRows(database, "test.one", z.unknown(), Prisma.sql`SELECT ${round}::int AS n`);
      }
      await selectRows(database, "test.listing", row, preparedOnThisSession);
      // A third text is past the limit of two: it runs, unnamed.
      expect(await selectRows(database, "test.past", z.unknown(), Prisma.sql`SELECT 'past the limit' AS n`)).toEqual([{ n: "past the limit" }]);
      const prepared = await selectRows(database, "test.prepared", row, preparedOnThisSession);
      // Named statements are prepared on the session that runs them: the pool has one.
      expect(prepared.map((entry) => entry.statement).sort()).toEqual(["SELECT $1::int AS n", "SELECT name, statement FROM pg_prepared_statements ORDER BY name"]);
      expect(prepared.every((entry) => /^splice_[0-9a-f]{24}$/.test(entry.name))).toBe(true);
      const inTransaction = await new Transactor(database, server.config.transactions).serializable((tx) => selectRows(tx, "test.prepared", row, preparedOnThisSession));
      expect(inTransaction.map((entry) => entry.statement).sort()).toEqual(prepared.map((entry) => entry.statement).sort());
    } finally {
      await closeDatabase(database);
    }
  });

  it("prepares nothing when switched off (behind PgBouncer in transaction mode)", async () => {
    const database = createDatabase(server.databaseUrl, settings(false, 500));
    try {
      await selectRows(database, "test.one", z.unknown(), Prisma.sql`SELECT ${1}::int AS n`);
      expect(await selectRows(database, "test.prepared", row, preparedOnThisSession)).toEqual([]);
    } finally {
      await closeDatabase(database);
    }
  });
});
