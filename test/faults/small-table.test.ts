// Conflicts must not depend on table statistics. On a small, freshly analysed customer table
// (every new deployment) the planner prefers a sequential scan for a lookup by id, whose
// Serializable predicate lock covers the whole table, so that transactions on different
// customers abort each other. 16 clients over 50 customers must see almost no retries. Each
// customer also has a history of 40 spent grants (three years of monthly subscriptions): a
// balance transaction must lock its live grants only, not pages or the whole grant table.
// The limit of 0.15 retries per operation: the code measures 0.03 to 0.07 here on its own
// (faster transactions overlap more than the slower ones before them, which measured 0.02 to
// 0.03), more beside other test files; the whole-table locks this guards against measured 1.5,
// with 503s. What remains, sampled from pg_locks during this load: page-level SIRead locks on
// the few primary-key pages of credit_reservation (the foreign-key checks of new ledger
// entries and holds read them, and every new reservation writes them), credit_balance,
// credit_grant and customer.
import fs from "node:fs";
import path from "node:path";
import { startTestServer, type TestCustomer, type TestServer } from "../support/test-server";

const customerCount = 50;
const clientCount = 16;
const cyclesPerClient = 20;
const retriesPerOperationMax = 0.15;
const figuresFile = path.resolve(__dirname, "..", "..", "test-artifacts", "small-table.json");

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

it("16 clients over 50 freshly analysed customers: under 0.15 retries per operation and no 503", async () => {
  const customers: TestCustomer[] = [];
  for (let index = 0; index < customerCount; index += 1) customers.push(await server.createCustomer({ initialSeconds: 100_000 }));
  // Spent and retired, as the service leaves them (their ledger history does not matter here).
  await server.sql.query(
    `INSERT INTO credit_grant (customer_id, source, granted_seconds, remaining_seconds, charged_seconds, expires_at, expiry_settled_at, retired_at, actor)
     SELECT c.id, 'SUBSCRIPTION', 3600, 0, 3600, now() - n * interval '30 days', now() - n * interval '30 days', now() - n * interval '30 days', 'system'
     FROM customer c, generate_series(1, 40) AS n`,
  );
  await server.sql.query("ANALYZE");
  const plan = await server.sql.query("EXPLAIN SELECT id FROM customer WHERE id = gen_random_uuid()");
  const conflictsBefore = server.services.transactor.counters.conflicts;

  const statuses = new Map<string, number>();
  let operations = 0;
  const client = async (clientIndex: number) => {
    for (let cycle = 0; cycle < cyclesPerClient; cycle += 1) {
      const customer = customers[(clientIndex + cycle * clientCount) % customerCount]!;
      const reserved = await server.graphql(
        `mutation { reserveCredits(input: { estimatedSeconds: 60, endpoint: "small-table" }) { reservation { id } } }`,
        {},
        customer.token,
      );
      const id = reserved.data?.reserveCredits?.reservation?.id;
      const confirmed = await server.graphql(
        `mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 30 }) { reservation { status } } }`,
        { id },
        customer.token,
      );
      for (const answer of [reserved, confirmed]) {
        operations += 1;
        const label = `${answer.status} ${String(answer.errors?.[0]?.extensions?.code ?? "ok")}`;
        statuses.set(label, (statuses.get(label) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: clientCount }, (_, index) => client(index)));

  const retries = server.services.transactor.counters.conflicts - conflictsBefore;
  const retriesPerOperation = retries / operations;
  fs.mkdirSync(path.dirname(figuresFile), { recursive: true });
  fs.writeFileSync(
    figuresFile,
    `${JSON.stringify({ operations, retries, retriesPerOperation, statuses: Object.fromEntries(statuses), plannerChoiceOutsideTheService: plan.rows[0]["QUERY PLAN"] }, null, 2)}\n`,
  );
  // The dangerous case: outside the service's sessions the planner does choose a sequential scan.
  expect(plan.rows[0]["QUERY PLAN"]).toMatch(/^Seq Scan on customer/);
  expect(Object.fromEntries(statuses)).toEqual({ "200 ok": clientCount * cyclesPerClient * 2 });
  expect(retriesPerOperation).toBeLessThan(retriesPerOperationMax);
});
