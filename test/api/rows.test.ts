// Rows are parsed where they enter: a row of another shape fails, naming its query.
import { z } from "zod";
import { Prisma } from "../../src/generated/prisma/client";
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
