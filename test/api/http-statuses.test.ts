// Every kind of refusal, with the HTTP status and the error code a client sees for it.
import { startTestServer, type TestCustomer, type TestServer } from "../support/test-server";

let server: TestServer;
let customer: TestCustomer;
beforeAll(async () => {
  server = await startTestServer({
    environment: { QUERY_MAX_ALIASES: "3", QUERY_MAX_DEPTH: "5", QUERY_MAX_COST: "150", QUERY_MAX_DIRECTIVES: "3", QUERY_MAX_TOKENS: "200", INTROSPECTION: "staff" },
  });
  customer = await server.createCustomer({ initialSeconds: 0 });
});
afterAll(() => server.close());

interface Row {
  refusal: string;
  send: () => Promise<{ status: number; code: string | undefined }>;
  status: number;
  code: string;
}

const viaGraphQL = (query: string, variables: Record<string, unknown> = {}, token?: () => string) => async () => {
  const response = await server.graphql(query, variables, token?.());
  return { status: response.status, code: response.errors?.[0]?.extensions?.code as string | undefined };
};

const viaBody = (body: string) => async () => {
  const response = await fetch(`${server.baseUrl}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body });
  const parsed = (await response.json().catch(() => ({}))) as { errors?: { extensions?: { code?: string } }[] };
  return { status: response.status, code: parsed.errors?.[0]?.extensions?.code };
};

const customerToken = () => customer.token;
const staffToken = () => server.staffToken;

const rows: Row[] = [
  { refusal: "syntax error", send: viaGraphQL("{ me { id }", {}, customerToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "unknown field", send: viaGraphQL("{ me { nope } }", {}, customerToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "variable of the wrong type", send: viaGraphQL("query($first: PositiveInt) { me { ledger(first: $first) { edges { cursor } } } }", { first: "ten" }, customerToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "over the token limit", send: viaGraphQL(`{ me { ${"id ".repeat(250)} } }`, {}, customerToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "over the depth limit", send: viaGraphQL(`{ searchCustomers(query: "x") { edges { node { license { auditTrail { edges { node { id } } } } } } } }`, {}, staffToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "over the cost limit", send: viaGraphQL(`{ me { a: reservations(first: 100) { edges { node { id } } } } }`, {}, customerToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "over the alias limit, with __typename", send: viaGraphQL(`{ a: __typename b: __typename c: __typename d: __typename }`, {}, customerToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "over the directive limit", send: viaGraphQL(`{ me { id @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) } }`, {}, customerToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "introspection without a staff token", send: viaGraphQL(`{ __schema { queryType { name } } }`, {}, customerToken), status: 403, code: "FORBIDDEN" },
  { refusal: "NUL byte in a variable", send: viaGraphQL(`mutation($email: String!) { createCustomer(input: { email: $email }) { id } }`, { email: "a\u0000b@example.com" }, staffToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "control character in an inline string", send: viaGraphQL(`{ searchCustomers(query: "x\\u0007y") { edges { cursor } } }`, {}, staffToken), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "batched request", send: viaBody(JSON.stringify([{ query: "{ __typename }" }, { query: "{ __typename }" }])), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "no query", send: viaBody(JSON.stringify({ variables: {} })), status: 400, code: "BAD_USER_INPUT" },
  { refusal: "no token where one is needed", send: viaGraphQL("{ me { id } }"), status: 200, code: "UNAUTHENTICATED" },
  { refusal: "insufficient credits", send: viaGraphQL(`mutation { reserveCredits(input: { estimatedSeconds: 60, endpoint: "x" }) { reservation { id } } }`, {}, customerToken), status: 402, code: "INSUFFICIENT_CREDITS" },
];

it.each(rows.map((row) => [row.refusal, row] as const))("%s answers its status and code", async (_refusal, row) => {
  expect(await row.send()).toEqual({ status: row.status, code: row.code });
});

it("aliases up to the limit are answered", async () => {
  const response = await server.graphql(`{ a: __typename b: __typename c: __typename }`, {}, customer.token);
  expect(response.status).toBe(200);
  expect(response.errors).toBeUndefined();
});

it("staff may introspect where introspection is for staff", async () => {
  const response = await server.graphql(`{ __schema { queryType { name } } }`, {}, server.staffToken);
  expect(response.status).toBe(200);
  expect(response.data).toEqual({ __schema: { queryType: { name: "Query" } } });
});

it("labels GraphQL requests route=/graphql in the metrics", async () => {
  await server.graphql("{ __typename }");
  const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
  expect(metrics).toMatch(/^splice_http_request_duration_seconds_count\{route="\/graphql",method="POST",status="200"\} [1-9]\d*$/m);
  expect(metrics).not.toMatch(/route="other"/);
});
