// Relay-style paging through the API: opaque cursors, both ends of a page, and a page size over
// the limit served as the limit instead of an error that would null the object around it.
import { startTestServer, type TestCustomer, type TestServer } from "../support/test-server";

let server: TestServer;
let customer: TestCustomer;
const adjustments = 104;

beforeAll(async () => {
  server = await startTestServer();
  customer = await server.createCustomer({ initialSeconds: 0 });
  for (let index = 0; index < adjustments; index += 1) {
    const adjusted = await server.graphql(
      `mutation($id: ID!) { adjustCredits(input: { customerId: $id, deltaSeconds: 1, note: "paging" }) { id } }`,
      { id: customer.id },
      server.staffToken,
    );
    expect(adjusted.errors).toBeUndefined();
  }
});
afterAll(() => server.close());

const ledgerPage = `query($first: PositiveInt, $after: String) {
  me { id email balance { secondsRemaining }
    ledger(first: $first, after: $after) {
      edges { cursor node { id balanceAfter } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}`;

it("serves first beyond PAGE_SIZE_MAX as the limit and keeps the rest of `me`", async () => {
  const response = await server.graphql(ledgerPage, { first: 101 }, customer.token);
  expect(response.errors).toBeUndefined();
  expect(response.data?.me.email).toBe(customer.email);
  expect(response.data?.me.balance.secondsRemaining).toBe(adjustments);
  expect(response.data?.me.ledger.edges).toHaveLength(server.config.limits.pageSizeMax);
  expect(response.data?.me.ledger.pageInfo.hasNextPage).toBe(true);
});

it("walks the ledger newest first with opaque cursors, knowing both ends of each page", async () => {
  const seen: number[] = [];
  let after: string | null = null;
  let pages = 0;
  for (;;) {
    const response: any = await server.graphql(ledgerPage, { first: 40, after }, customer.token);
    const { edges, pageInfo } = response.data.me.ledger;
    expect(pageInfo.hasPreviousPage).toBe(after !== null);
    expect(pageInfo.startCursor).toBe(edges[0]?.cursor ?? null);
    expect(pageInfo.endCursor).toBe(edges.at(-1)?.cursor ?? null);
    for (const edge of edges) {
      expect(Buffer.from(edge.cursor, "base64url").toString("latin1")).not.toContain(`ledger:${edge.node.id}`);
      seen.push(edge.node.balanceAfter);
    }
    pages += 1;
    if (!pageInfo.hasNextPage) break;
    after = pageInfo.endCursor;
  }
  expect(pages).toBe(3);
  expect(seen).toEqual(Array.from({ length: adjustments }, (_, index) => adjustments - index));
});

it("refuses another list's cursor, another customer's, and a cursor it did not make", async () => {
  const search: any = await server.graphql(`{ searchCustomers(query: "example", first: 1) { pageInfo { endCursor } } }`, {}, server.staffToken);
  const foreign = search.data.searchCustomers.pageInfo.endCursor;
  const response = await server.graphql(ledgerPage, { first: 5, after: foreign }, customer.token);
  expect(response.errors?.map((error) => error.extensions?.code)).toEqual(["BAD_USER_INPUT"]);
  const mine: any = await server.graphql(ledgerPage, { first: 1 }, customer.token);
  const other = await server.createCustomer({ initialSeconds: 5 });
  const crossed = await server.graphql(ledgerPage, { first: 5, after: mine.data.me.ledger.pageInfo.endCursor }, other.token);
  expect(crossed.errors?.map((error) => error.extensions?.code)).toEqual(["BAD_USER_INPUT"]);
  const readable = await server.graphql(ledgerPage, { first: 5, after: Buffer.from("ledger:8").toString("base64url") }, customer.token);
  expect(readable.errors?.map((error) => error.extensions?.code)).toEqual(["BAD_USER_INPUT"]);
});
