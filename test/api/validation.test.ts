// Bad input is refused with BAD_USER_INPUT and changes nothing.
import { storedBalance } from "../support/ledger-invariants";
import { errorCodes, startTestServer, type TestServer, type TestCustomer } from "../support/test-server";

let server: TestServer;
let customer: TestCustomer;
let reservationId: string;
beforeAll(async () => {
  server = await startTestServer();
  customer = await server.createCustomer({ initialSeconds: 10_000 });
  const reserved: any = await server.graphql(
    `mutation { reserveCredits(input: { estimatedSeconds: 100, endpoint: "x" }) { reservation { id } } }`,
    {},
    customer.token,
  );
  reservationId = reserved.data.reserveCredits.reservation.id;
});
afterAll(() => server.close());

const reserve = `mutation R($input: ReserveCreditsInput!) { reserveCredits(input: $input) { replayed } }`;
const confirm = `mutation C($input: ConfirmReservationInput!) { confirmReservation(input: $input) { balance { secondsRemaining } } }`;
const release = `mutation L($input: ReleaseReservationInput!) { releaseReservation(input: $input) { balance { secondsRemaining } } }`;
const adjust = `mutation A($input: AdjustCreditsInput!) { adjustCredits(input: $input) { id } }`;
const create = `mutation N($input: CreateCustomerInput!) { createCustomer(input: $input) { id } }`;
const search = `query S($query: String!, $first: PositiveInt, $after: String) { searchCustomers(query: $query, first: $first, after: $after) { edges { cursor } } }`;
const ledger = `query L($first: PositiveInt) { me { ledger(first: $first) { edges { cursor } } } }`;

const long = (length: number) => "a".repeat(length);
type Case = [name: string, query: string, variables: () => Record<string, unknown>, as: "customer" | "staff"];

const cases: Case[] = [
  ["negative estimatedSeconds", reserve, () => ({ input: { estimatedSeconds: -5, endpoint: "x" } }), "customer"],
  ["zero estimatedSeconds", reserve, () => ({ input: { estimatedSeconds: 0, endpoint: "x" } }), "customer"],
  ["fractional estimatedSeconds", reserve, () => ({ input: { estimatedSeconds: 1.5, endpoint: "x" } }), "customer"],
  ["huge estimatedSeconds", reserve, () => ({ input: { estimatedSeconds: 2 ** 40, endpoint: "x" } }), "customer"],
  ["estimatedSeconds over the configured maximum", reserve, () => ({ input: { estimatedSeconds: 24 * 3600 + 1, endpoint: "x" } }), "customer"],
  ["a string for estimatedSeconds", reserve, () => ({ input: { estimatedSeconds: "100", endpoint: "x" } }), "customer"],
  ["empty endpoint", reserve, () => ({ input: { estimatedSeconds: 1, endpoint: "" } }), "customer"],
  ["over-long endpoint", reserve, () => ({ input: { estimatedSeconds: 1, endpoint: long(65) } }), "customer"],
  ["endpoint with spaces", reserve, () => ({ input: { estimatedSeconds: 1, endpoint: "rm -rf /" } }), "customer"],
  ["over-long idempotencyKey", reserve, () => ({ input: { estimatedSeconds: 1, endpoint: "x", idempotencyKey: long(129) } }), "customer"],
  ["empty idempotencyKey", reserve, () => ({ input: { estimatedSeconds: 1, endpoint: "x", idempotencyKey: "" } }), "customer"],
  ["negative actualSeconds", confirm, () => ({ input: { reservationId, actualSeconds: -1 } }), "customer"],
  ["fractional actualSeconds", confirm, () => ({ input: { reservationId, actualSeconds: 0.5 } }), "customer"],
  ["actualSeconds over the configured maximum", confirm, () => ({ input: { reservationId, actualSeconds: 48 * 3600 + 1 } }), "customer"],
  ["over-long release reason", release, () => ({ input: { reservationId, reason: long(501) } }), "customer"],
  ["zero adjustment", adjust, () => ({ input: { customerId: customer.id, deltaSeconds: 0, note: "x" } }), "staff"],
  ["fractional adjustment", adjust, () => ({ input: { customerId: customer.id, deltaSeconds: 1.5, note: "x" } }), "staff"],
  ["adjustment beyond 32-bit", adjust, () => ({ input: { customerId: customer.id, deltaSeconds: 2 ** 33, note: "x" } }), "staff"],
  ["adjustment over the configured maximum", adjust, () => ({ input: { customerId: customer.id, deltaSeconds: 10_000 * 3600 + 1, note: "x" } }), "staff"],
  ["blank adjustment note", adjust, () => ({ input: { customerId: customer.id, deltaSeconds: 5, note: "   " } }), "staff"],
  ["over-long adjustment note", adjust, () => ({ input: { customerId: customer.id, deltaSeconds: 5, note: long(501) } }), "staff"],
  ["adjustment above the maximum balance", adjust, () => ({ input: { customerId: customer.id, deltaSeconds: 1_000_000_000, note: "x" } }), "staff"],
  ["malformed email", create, () => ({ input: { email: "not-an-email" } }), "staff"],
  ["over-long email", create, () => ({ input: { email: `${long(250)}@example.com` } }), "staff"],
  ["malformed Stripe id", create, () => ({ input: { email: "ok@example.com", stripeCustomerId: "customer-1" } }), "staff"],
  ["negative initialSeconds", create, () => ({ input: { email: "ok@example.com", initialSeconds: -1 } }), "staff"],
  ["unknown tier", create, () => ({ input: { email: "ok@example.com", tier: "GOLD" } }), "staff"],
  ["empty search", search, () => ({ query: "  " }), "staff"],
  ["over-long search", search, () => ({ query: long(255) }), "staff"],
  ["zero page size", ledger, () => ({ first: 0 }), "customer"],
  ["a cursor from nowhere", search, () => ({ query: "a", after: "bm9wZTox" }), "staff"],
];

it.each(cases)("refuses %s with BAD_USER_INPUT and changes nothing", async (_name, query, variables, as) => {
  const before = await storedBalance(server.sql, customer.id);
  const customerCount = (await server.sql.query("SELECT count(*)::int AS n FROM customer")).rows[0].n;
  const response = await server.graphql(query, variables(), as === "staff" ? server.staffToken : customer.token);
  expect(errorCodes(response)).toEqual(["BAD_USER_INPUT"]);
  expect(await storedBalance(server.sql, customer.id)).toEqual(before);
  expect((await server.sql.query("SELECT count(*)::int AS n FROM customer")).rows[0].n).toBe(customerCount);
});

it("refuses an over-large body before parsing it", async () => {
  const response = await fetch(`${server.baseUrl}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: `{ me { id } }`, padding: long(300_000) }),
  });
  expect(response.status).toBe(413);
});

it("answers malformed JSON with 400 and no detail", async () => {
  const response = await fetch(`${server.baseUrl}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
  expect(response.status).toBe(400);
  expect(await response.text()).not.toMatch(/at |node_modules|SyntaxError/);
});
