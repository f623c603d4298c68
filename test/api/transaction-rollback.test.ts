// A transaction whose work returns a failure leaves nothing behind: whatever the operation
// wrote before it decided to fail is rolled back, on the real database.
import { fail, succeed } from "../../src/platform/failures";
import { uniqueEmail, startTestServer, type TestServer } from "../support/test-server";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

// A customer and its balance row, as customer creation writes them (the database insists on both).
const insertCustomer = (email: string) => async (tx: Parameters<Parameters<TestServer["services"]["transactor"]["serializable"]>[0]>[0]) => {
  await tx.$executeRaw`INSERT INTO customer (email, tier) VALUES (${email}, 'STARTER')`;
  await tx.$executeRaw`INSERT INTO credit_balance (customer_id) SELECT id FROM customer WHERE email = ${email}`;
};
const storedCustomers = async (email: string) =>
  Number((await server.sql.query("SELECT count(*) FROM customer WHERE email = $1", [email])).rows[0].count);

it("a returned failure rolls back every write made before it, and is returned as it was", async () => {
  const email = uniqueEmail("rolled-back");
  const outcome = await server.services.transactor.serializable(async (tx) => {
    await insertCustomer(email)(tx);
    return fail({ code: "INSUFFICIENT_CREDITS", secondsRemaining: 7 });
  });
  expect(outcome).toEqual({ ok: false, failure: { code: "INSUFFICIENT_CREDITS", secondsRemaining: 7 } });
  expect(await storedCustomers(email)).toBe(0);
});

it("a thrown error rolls back too, and a success commits", async () => {
  const thrownEmail = uniqueEmail("thrown");
  await expect(
    server.services.transactor.serializable(async (tx) => {
      await insertCustomer(thrownEmail)(tx);
      throw new Error("a bug");
    }),
  ).rejects.toThrow("a bug");
  expect(await storedCustomers(thrownEmail)).toBe(0);

  const committedEmail = uniqueEmail("committed");
  const outcome = await server.services.transactor.serializable(async (tx) => {
    await insertCustomer(committedEmail)(tx);
    return succeed("done");
  });
  expect(outcome).toEqual({ ok: true, value: "done" });
  expect(await storedCustomers(committedEmail)).toBe(1);
});

it("leaves no connection behind after failures", async () => {
  for (let round = 0; round < 3 * server.config.database.poolSize; round += 1) {
    await server.services.transactor.serializable(async () => fail({ code: "CUSTOMER_NOT_FOUND" }));
  }
  expect(server.database.pool.waitingCount).toBe(0);
  expect(server.database.pool.totalCount - server.database.pool.idleCount).toBe(0);
});

it("refuses to commit a customer without a balance row", async () => {
  const client = await server.sql.connect();
  try {
    await client.query("BEGIN");
    await client.query("INSERT INTO customer (email, tier) VALUES ($1, 'STARTER')", [uniqueEmail("no-balance")]);
    await expect(client.query("COMMIT")).rejects.toThrow(/has no credit_balance row/);
  } finally {
    client.release();
  }
});
