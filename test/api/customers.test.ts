import { expectConsistentLedger } from "../support/ledger-invariants";
import { errorCodes, startTestServer, uniqueEmail, type TestServer } from "../support/test-server";

const createMutation = `mutation Create($input: CreateCustomerInput!) {
  createCustomer(input: $input) { id email tier stripeCustomerId createdAt balance { secondsRemaining secondsReserved hoursRemaining } } }`;
const adjustMutation = `mutation Adjust($input: AdjustCreditsInput!) {
  adjustCredits(input: $input) { id balance { secondsRemaining } ledger(first: 1) { edges { node { kind deltaSeconds balanceAfter note actor } } } } }`;
const searchQuery = `query Search($query: String!, $first: PositiveInt, $after: String) {
  searchCustomers(query: $query, first: $first, after: $after) { edges { cursor node { id email } } pageInfo { hasNextPage endCursor } } }`;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ environment: { TIER_PRO_MONTHLY_SECONDS: "7200" } });
});
afterAll(() => server.close());

describe("createCustomer", () => {
  it("starts a STARTER customer with 15 hours, granted through the ledger", async () => {
    const email = uniqueEmail();
    const result: any = await server.graphql(createMutation, { input: { email } }, server.staffToken);
    expect(result.data.createCustomer).toMatchObject({
      email,
      tier: "STARTER",
      stripeCustomerId: null,
      balance: { secondsRemaining: 15 * 3600, secondsReserved: 0, hoursRemaining: 15 },
    });
    const ledger = await server.sql.query("SELECT kind, delta_seconds, note, actor FROM ledger_entry WHERE customer_id = $1", [
      result.data.createCustomer.id,
    ]);
    expect(ledger.rows).toEqual([{ kind: "GRANT", delta_seconds: 54000, note: "STARTER monthly hours", actor: "staff:test-staff" }]);
  });

  it("uses the configured monthly hours of other tiers, or the given initialSeconds", async () => {
    const pro: any = await server.graphql(createMutation, { input: { email: uniqueEmail(), tier: "PRO" } }, server.staffToken);
    expect(pro.data.createCustomer.balance.secondsRemaining).toBe(7200);
    const given: any = await server.graphql(createMutation, { input: { email: uniqueEmail(), tier: "STUDIO", initialSeconds: 0 } }, server.staffToken);
    expect(given.data.createCustomer).toMatchObject({ tier: "STUDIO", balance: { secondsRemaining: 0 } });
    await expectConsistentLedger(server.sql, given.data.createCustomer.id);
  });

  it("stores emails lower-cased and refuses a second customer with the same email or Stripe id", async () => {
    const email = uniqueEmail("Mixed.Case");
    const first: any = await server.graphql(createMutation, { input: { email: `  ${email.toUpperCase()} `, stripeCustomerId: "cus_Abc123" } }, server.staffToken);
    expect(first.data.createCustomer).toMatchObject({ email: email.toLowerCase(), stripeCustomerId: "cus_Abc123" });
    const sameEmail = await server.graphql(createMutation, { input: { email } }, server.staffToken);
    expect(errorCodes(sameEmail)).toEqual(["BAD_USER_INPUT"]);
    const sameStripe = await server.graphql(createMutation, { input: { email: uniqueEmail(), stripeCustomerId: "cus_Abc123" } }, server.staffToken);
    expect(errorCodes(sameStripe)).toEqual(["BAD_USER_INPUT"]);
  });

  it("creates exactly one customer when the same email is created concurrently", async () => {
    const email = uniqueEmail("race");
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => server.graphql(createMutation, { input: { email } }, server.staffToken)),
    );
    expect(responses.filter((response) => !response.errors)).toHaveLength(1);
    expect(responses.flatMap((response) => errorCodes(response))).toEqual(Array(7).fill("BAD_USER_INPUT"));
    const stored = await server.sql.query("SELECT count(*)::int AS n FROM customer WHERE email = $1", [email]);
    expect(stored.rows[0].n).toBe(1);
  });
});

describe("adjustCredits", () => {
  it("grants and deducts with a note, recorded as ADJUSTMENT by the staff member", async () => {
    const customer = await server.createCustomer({ initialSeconds: 100 });
    const granted: any = await server.graphql(adjustMutation, { input: { customerId: customer.id, deltaSeconds: 3600, note: "goodwill" } }, server.staffToken);
    expect(granted.data.adjustCredits.balance.secondsRemaining).toBe(3700);
    expect(granted.data.adjustCredits.ledger.edges[0].node).toEqual({
      kind: "ADJUSTMENT",
      deltaSeconds: 3600,
      balanceAfter: 3700,
      note: "goodwill",
      actor: "staff:test-staff",
    });
    const deducted: any = await server.graphql(adjustMutation, { input: { customerId: customer.id, deltaSeconds: -3700, note: "chargeback" } }, server.staffToken);
    expect(deducted.data.adjustCredits.balance.secondsRemaining).toBe(0);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("refuses to go below zero with INSUFFICIENT_CREDITS and the balance", async () => {
    const customer = await server.createCustomer({ initialSeconds: 100 });
    const result = await server.graphql(adjustMutation, { input: { customerId: customer.id, deltaSeconds: -101, note: "too much" } }, server.staffToken);
    expect(result.status).toBe(402);
    expect(result.errors![0]!.extensions).toEqual({ code: "INSUFFICIENT_CREDITS", secondsRemaining: 100 });
    expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 100 });
  });

  it("answers CUSTOMER_NOT_FOUND for unknown and malformed customer ids", async () => {
    for (const customerId of ["00000000-0000-4000-8000-000000000000", "nope"]) {
      const result = await server.graphql(adjustMutation, { input: { customerId, deltaSeconds: 1, note: "x" } }, server.staffToken);
      expect(errorCodes(result)).toEqual(["CUSTOMER_NOT_FOUND"]);
    }
  });
});

describe("reading customers", () => {
  it("finds customers by part of their email or their exact Stripe id, page by page", async () => {
    const marker = `findme${Date.now()}`;
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const result: any = await server.graphql(createMutation, { input: { email: `${marker}-${index}@example.com` } }, server.staffToken);
      ids.push(result.data.createCustomer.id);
    }
    const first: any = await server.graphql(searchQuery, { query: marker.toUpperCase(), first: 2 }, server.staffToken);
    expect(first.data.searchCustomers.edges.map((edge: any) => edge.node.id)).toEqual([ids[2], ids[1]]);
    expect(first.data.searchCustomers.pageInfo.hasNextPage).toBe(true);
    const rest: any = await server.graphql(searchQuery, { query: marker, first: 2, after: first.data.searchCustomers.pageInfo.endCursor }, server.staffToken);
    expect(rest.data.searchCustomers.edges.map((edge: any) => edge.node.id)).toEqual([ids[0]]);
    expect(rest.data.searchCustomers.pageInfo.hasNextPage).toBe(false);

    await server.graphql(createMutation, { input: { email: uniqueEmail(), stripeCustomerId: "cus_Search42" } }, server.staffToken);
    const byStripe: any = await server.graphql(searchQuery, { query: "cus_Search42" }, server.staffToken);
    expect(byStripe.data.searchCustomers.edges).toHaveLength(1);
  });

  it("treats LIKE wildcards in the query as plain characters", async () => {
    const result: any = await server.graphql(searchQuery, { query: "%" }, server.staffToken);
    expect(result.data.searchCustomers.edges).toEqual([]);
    const underscore: any = await server.graphql(searchQuery, { query: "_" }, server.staffToken);
    expect(underscore.data.searchCustomers.edges).toEqual([]);
  });

  it("returns the caller's own account from me, and null for staff", async () => {
    const customer = await server.createCustomer({ initialSeconds: 5 });
    const own: any = await server.graphql(`{ me { id email } }`, {}, customer.token);
    expect(own.data.me).toEqual({ id: customer.id, email: customer.email });
    const staff: any = await server.graphql(`{ me { id } }`, {}, server.staffToken);
    expect(staff.data.me).toBeNull();
  });

  it("lets staff read any customer by id; unknown ids are null", async () => {
    const customer = await server.createCustomer({ initialSeconds: 5 });
    const query = `query One($id: ID!) { customer(id: $id) { id balance { secondsRemaining } } }`;
    const found: any = await server.graphql(query, { id: customer.id }, server.staffToken);
    expect(found.data.customer).toEqual({ id: customer.id, balance: { secondsRemaining: 5 } });
    const missing: any = await server.graphql(query, { id: "00000000-0000-4000-8000-000000000000" }, server.staffToken);
    expect(missing.data.customer).toBeNull();
  });
});
