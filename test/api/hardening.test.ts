// Query limits, introspection policy, security headers, CORS and what the logs may contain.
import { Writable } from "node:stream";
import pino from "pino";
import { errorCodes, startTestServer, type TestServer } from "../support/test-server";

describe("a production-configured server", () => {
  let server: TestServer;
  const logLines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    server = await startTestServer({
      environment: {
        INTROSPECTION: "staff",
        QUERY_MAX_DEPTH: "6",
        QUERY_MAX_ALIASES: "3",
        QUERY_MAX_COST: "150",
        DASHBOARD_ORIGINS: "https://dashboard.splice.test",
      },
      logger: pino({ level: "info", redact: { paths: ["req.headers.authorization"], censor: "[redacted]" } }, sink),
    });
  });
  afterAll(() => server.close());

  it("refuses over-deep and over-aliased operations as BAD_USER_INPUT", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    const deep = await server.graphql(`{ me { license { devices { id } customerId } ledger { edges { node { id } } pageInfo { endCursor } } reservations { edges { node { id } } } } }`, {}, customer.token);
    expect(deep.errors).toBeUndefined();
    const nested = await server.graphql(`query { a: me { id } b: me { id } c: me { id } d: me { id } }`, {}, customer.token);
    expect(errorCodes(nested)).toEqual(["BAD_USER_INPUT"]);
    expect(nested.errors![0]!.message).toMatch(/alias/i);
    const depth = await server.graphql(`{ searchCustomers(query: "x") { edges { node { license { auditTrail { edges { node { id } } } } } } } }`, {}, server.staffToken);
    expect(errorCodes(depth)).toEqual(["BAD_USER_INPUT"]);
    expect(depth.errors![0]!.message).toMatch(/depth/i);
  });

  it("refuses operations over the token, cost and directive limits as BAD_USER_INPUT", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    const refusedFor = async (query: string, reason: RegExp) => {
      const response = await server.graphql(query, {}, customer.token);
      expect(new Set(errorCodes(response))).toEqual(new Set(["BAD_USER_INPUT"]));
      expect(response.errors!.map((error) => error.message).join(" ")).toMatch(reason);
    };
    await refusedFor(`{ me { ${"id ".repeat(4100)} } }`, /token/i);
    const reservationFields = "id customerId endpoint reservedSeconds actualSeconds chargedSeconds unbilledSeconds status reason createdAt expiresAt settledAt";
    await refusedFor(`{ me { r0: reservations(first: 100) { edges { cursor node { ${reservationFields} } } } r1: reservations(first: 100) { edges { node { ${reservationFields} } } } } }`, /cost/i);
    await refusedFor(`{ me { id ${"@include(if: true) ".repeat(60)} } }`, /directive/i);
  });

  it("refuses documents and variables nested thousands of levels deep with 400 and the limit that was hit", async () => {
    const post = async (body: string) => {
      const response = await fetch(`${server.baseUrl}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${server.staffToken}` }, body });
      return { status: response.status, body: (await response.json()) as { errors: { message: string; extensions: { code: string } }[] } };
    };
    const search = "query($q: String!) { searchCustomers(query: $q) { edges { node { id } } } }";
    const deepVariables = `{"a":`.repeat(20_000) + `"x"` + "}".repeat(20_000);
    expect(await post(`{"query":${JSON.stringify(search)},"variables":{"q":${deepVariables}}}`)).toEqual({
      status: 400,
      body: { errors: [{ message: "Variables nest objects and lists more than 32 levels deep (VARIABLES_MAX_NESTING)", extensions: { code: "BAD_USER_INPUT" } }] },
    });
    const deepLiteral = `{ searchCustomers(query: ${"[".repeat(2000)}"x"${"]".repeat(2000)}) { edges { node { id } } } }`;
    expect(await post(JSON.stringify({ query: deepLiteral }))).toEqual({
      status: 400,
      body: { errors: [{ message: "The document nests brackets, braces and parentheses more than 64 levels deep (QUERY_MAX_NESTING)", extensions: { code: "BAD_USER_INPUT" } }] },
    });
    const deepInUrl = `{"a":`.repeat(100) + `"x"` + "}".repeat(100);
    const get = await fetch(`${server.baseUrl}/graphql?query=${encodeURIComponent(search)}&variables=${encodeURIComponent(`{"q":${deepInUrl}}`)}`, {
      headers: { authorization: `Bearer ${server.staffToken}`, "apollo-require-preflight": "true" },
    });
    expect({ status: get.status, message: ((await get.json()) as { errors: { message: string }[] }).errors[0]!.message }).toEqual({
      status: 400,
      message: "Variables nest objects and lists more than 32 levels deep (VARIABLES_MAX_NESTING)",
    });
    // Within the limits the same shapes reach GraphQL's own checks.
    const shallow = await post(JSON.stringify({ query: search, variables: { q: { a: "x" } } }));
    expect(shallow.body.errors[0]!.message).toMatch(/String cannot represent a non string value/);
  });

  it("refuses batched requests", async () => {
    const response = await fetch(`${server.baseUrl}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([{ query: "{ __typename }" }, { query: "{ __typename }" }]),
    });
    expect(response.status).toBe(400);
  });

  it("allows introspection to staff only", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    const query = `{ __schema { queryType { name } } }`;
    expect(errorCodes(await server.graphql(query))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.graphql(query, {}, customer.token))).toEqual(["FORBIDDEN"]);
    expect(((await server.graphql(query, {}, server.staffToken)) as any).data.__schema.queryType.name).toBe("Query");
    expect(((await server.graphql(`{ __typename }`)) as any).data.__typename).toBe("Query");
  });

  it("sends security headers, and CORS only to the dashboard's origin", async () => {
    const allowed = await fetch(`${server.baseUrl}/graphql`, { method: "OPTIONS", headers: { origin: "https://dashboard.splice.test", "access-control-request-method": "POST" } });
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://dashboard.splice.test");
    const foreign = await fetch(`${server.baseUrl}/graphql`, { method: "OPTIONS", headers: { origin: "https://evil.test", "access-control-request-method": "POST" } });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
    // Browser code may read the request id (for support) and Retry-After (for backing off).
    const answer = await fetch(`${server.baseUrl}/graphql`, {
      method: "POST",
      headers: { origin: "https://dashboard.splice.test", "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    expect(answer.headers.get("access-control-expose-headers")?.split(",").map((name) => name.trim().toLowerCase()).sort()).toEqual(["retry-after", "x-request-id"]);
    expect(answer.headers.get("x-request-id")).toBeTruthy();
    const api = await fetch(`${server.baseUrl}/healthz`);
    expect(api.headers.get("x-content-type-options")).toBe("nosniff");
    expect(api.headers.get("strict-transport-security")).toMatch(/max-age/);
    expect(api.headers.get("x-powered-by")).toBeNull();
  });

  it("logs each request with its id, operation, caller and outcome, and no secret", async () => {
    const customer = await server.createCustomer({ initialSeconds: 10 });
    const issued: any = await server.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: customer.id }, server.staffToken);
    const key = issued.data.issueLicense.license.key;
    logLines.length = 0;
    await server.graphql(`query Balance { me { balance { secondsRemaining } } }`, {}, customer.token, { "x-request-id": "log-test-1" });
    await server.graphql(`mutation Activate($key: String!) { activateLicense(input: { key: $key, device: { fingerprint: "f" } }) { deviceToken } }`, { key }, undefined, { "x-request-id": "log-test-2" });
    await server.graphql(`mutation Reserve { reserveCredits(input: { estimatedSeconds: 999, endpoint: "x" }) { replayed } }`, {}, customer.token, { "x-request-id": "log-test-3" });
    const lines = logLines.map((line) => JSON.parse(line));
    const balance = lines.find((line) => line.req?.id === "log-test-1");
    expect(balance).toMatchObject({ operation: "Balance", outcome: "ok", callerRole: "customer", caller: `customer:${customer.id}`, res: { statusCode: 200 } });
    expect(lines.find((line) => line.req?.id === "log-test-3")).toMatchObject({ operation: "Reserve", outcome: "INSUFFICIENT_CREDITS", res: { statusCode: 402 } });
    const everything = logLines.join("\n");
    expect(everything).not.toContain(customer.token);
    expect(everything).not.toContain(key);
    expect(everything).not.toContain(customer.email);
    expect(everything).not.toMatch(/spd_[A-Za-z0-9_-]{20}/);
  });
});
