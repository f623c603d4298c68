// A request's deadline for the database (platform/deadline.ts) cuts waits, not outcomes on a
// server that answers: a COMMIT is not sent once it has passed (so a 503 means nothing was
// written), and once a write has committed, the reads that fill the answer get a grace.
import { z } from "zod";
import { Prisma } from "../../src/generated/prisma/client";
import { withDeadline } from "../../src/platform/deadline";
import { isUnavailable } from "../../src/platform/errors";
import { column, execute, selectRows } from "../../src/platform/rows";
import { startTestServer, type TestServer } from "../support/test-server";

let server: TestServer;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const probeRow = z.object({ id: column.text });

beforeAll(async () => {
  server = await startTestServer();
  await server.sql.query("CREATE TABLE deadline_probe (id text PRIMARY KEY)");
  // Warm: the first transaction of a client opens its connection and compiles Prisma's queries.
  await server.services.transactor.serializable((tx) => execute(tx, "test.warm", Prisma.sql`SELECT 1`));
});
afterAll(() => server.close());

const written = async (id: string) => (await server.sql.query("SELECT id FROM deadline_probe WHERE id = $1", [id])).rowCount;

it("once a write committed, the reads that fill the answer have TX_COMMIT_WAIT_MIN_MS past the deadline", async () => {
  expect(server.config.transactions.commitWaitMinMs).toBe(300);
  const answer = withDeadline(250, async () => {
    await sleep(100);
    await server.services.transactor.serializable((tx) => execute(tx, "test.write", Prisma.sql`INSERT INTO deadline_probe (id) VALUES ('committed')`));
    // Past the request's deadline (250 ms), within the commit's grace (its time + 300 ms).
    await sleep(200);
    return selectRows(server.database, "test.read", probeRow, Prisma.sql`SELECT id FROM deadline_probe WHERE id = 'committed'`);
  });
  await expect(answer).resolves.toEqual([{ id: "committed" }]);
});

it("without a commit, a read after the deadline is refused as unavailable", async () => {
  const answer = withDeadline(300, async () => {
    await sleep(400);
    return selectRows(server.database, "test.read", probeRow, Prisma.sql`SELECT id FROM deadline_probe`);
  });
  const error = await answer.then(() => undefined, (failure: unknown) => failure);
  expect(isUnavailable(error)).toBe(true);
});

it("past the deadline a transaction's COMMIT is not sent: unavailable, and nothing written", async () => {
  const answer = withDeadline(200, () =>
    server.services.transactor.once(async (tx) => {
      await execute(tx, "test.write", Prisma.sql`INSERT INTO deadline_probe (id) VALUES ('late')`);
      // The work outlasts the deadline without yielding, so the COMMIT comes before any timer.
      const untilMs = Date.now() + 250;
      while (Date.now() < untilMs);
      return "done";
    }),
  );
  const error = await answer.then(() => undefined, (failure: unknown) => failure);
  expect(isUnavailable(error)).toBe(true);
  expect(await written("late")).toBe(0);
});
