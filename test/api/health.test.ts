import { errorCodes, startTestServer, type TestServer } from "../support/test-server";

describe("with a reachable database", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it("answers /healthz and /readyz", async () => {
    expect(await (await fetch(`${server.baseUrl}/healthz`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${server.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
  });

  it("serves Prometheus metrics with the transaction counters", async () => {
    const response = await fetch(`${server.baseUrl}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toMatch(/^splice_transaction_attempts_total \d+$/m);
    expect(text).toMatch(/^splice_transaction_conflicts_total \d+$/m);
    expect(text).toMatch(/^splice_transaction_exhausted_total \d+$/m);
  });

  it("returns the request id it was given, or a new one", async () => {
    const given = await fetch(`${server.baseUrl}/healthz`, { headers: { "x-request-id": "abc-123" } });
    expect(given.headers.get("x-request-id")).toBe("abc-123");
    const fresh = await fetch(`${server.baseUrl}/healthz`);
    expect(fresh.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("metrics behind a token", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ environment: { METRICS_TOKEN: "metrics-token-for-tests" } });
  });
  afterAll(() => server.close());

  it("refuses scrapes without the token", async () => {
    expect((await fetch(`${server.baseUrl}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.baseUrl}/metrics`, { headers: { authorization: "Bearer wrong-token-of-some-len" } })).status).toBe(401);
    expect((await fetch(`${server.baseUrl}/metrics`, { headers: { authorization: "Bearer metrics-token-for-tests" } })).status).toBe(200);
  });
});

describe("with the database unreachable", () => {
  let server: TestServer;
  beforeAll(async () => {
    // Port 9 (discard) on loopback: nothing listens, connections are refused at once.
    server = await startTestServer({
      databaseUrl: "postgresql://splice:splice@127.0.0.1:9/splice",
      environment: { TX_MAX_WAIT_MS: "500", TX_LOCK_TIMEOUT_MS: "500" },
    });
  });
  afterAll(() => server.close());

  it("reports not ready", async () => {
    expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(503);
  });

  it("answers SERVICE_UNAVAILABLE with HTTP 503 and no internals", async () => {
    for (const [query, token] of [
      [`{ me { id } }`, server.tokenFor("0b5b3f0e-8a43-4a4f-9a55-3f1f0f6b8c11")],
      [`mutation { reserveCredits(input: { estimatedSeconds: 5, endpoint: "x" }) { replayed } }`, server.tokenFor("0b5b3f0e-8a43-4a4f-9a55-3f1f0f6b8c11")],
    ] as const) {
      const response = await server.graphql(query, {}, token);
      expect(response.status).toBe(503);
      expect(errorCodes(response)).toEqual(["SERVICE_UNAVAILABLE"]);
      expect(JSON.stringify(response.errors)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|prisma|stack/i);
    }
  });
});
