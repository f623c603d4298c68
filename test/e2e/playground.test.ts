// The staff console in a real browser (Debian's Chromium through playwright-core): open it with
// no internet access, set a staff token, run a search, see the result. Every request the page
// makes must go to the API itself. A screenshot is kept under test-artifacts/ (git-ignored).
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { startTestServer, type TestServer } from "../support/test-server";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const artifacts = path.resolve(__dirname, "..", "..", "test-artifacts");

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: run scripts/ensure-chromium.sh (npm test does) or set CHROMIUM_PATH`);
  }
  server = await startTestServer();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

it("serves a self-contained console to browsers and the API to everyone else", async () => {
  const page = await fetch(`${server.baseUrl}/graphql`, { headers: { accept: "text/html" } });
  expect(page.status).toBe(200);
  expect(page.headers.get("content-type")).toMatch(/text\/html/);
  expect(await page.text()).toContain("Splice support console");
  const api = await fetch(`${server.baseUrl}/graphql?query=${encodeURIComponent("{ __typename }")}`, {
    headers: { accept: "application/json", "apollo-require-preflight": "true" },
  });
  expect(await api.json()).toEqual({ data: { __typename: "Query" } });
});

it("sends the page compressed, with an ETag per encoding that answers 304", async () => {
  const first = await fetch(`${server.baseUrl}/graphql`, { headers: { accept: "text/html", "accept-encoding": "gzip" } });
  expect(first.status).toBe(200);
  expect(first.headers.get("content-encoding")).toBe("gzip");
  const compressedBytes = Number(first.headers.get("content-length"));
  expect((await first.text()).length).toBeGreaterThan(3 * compressedBytes);
  const etag = first.headers.get("etag")!;
  expect(etag).toMatch(/^"[\w-]+"$/);
  const again = await fetch(`${server.baseUrl}/graphql`, { headers: { accept: "text/html", "accept-encoding": "gzip", "if-none-match": etag } });
  expect(again.status).toBe(304);
  const plain = await fetch(`${server.baseUrl}/graphql`, { headers: { accept: "text/html", "accept-encoding": "identity", "if-none-match": etag } });
  expect(plain.status).toBe(200);
  expect(plain.headers.get("content-encoding")).toBeNull();
  expect(plain.headers.get("etag")).not.toBe(etag);
  await plain.arrayBuffer();
});

it("can be switched off (CONSOLE_ENABLED=false): browsers then reach the API", async () => {
  const off = await startTestServer({ environment: { CONSOLE_ENABLED: "false" } });
  try {
    const response = await fetch(`${off.baseUrl}/graphql`, { headers: { accept: "text/html" } });
    expect(await response.text()).not.toContain("Splice support console");
  } finally {
    await off.close();
  }
});

it("lets staff paste a token and run searchCustomers in the browser", async () => {
  const customer = await server.createCustomer({ initialSeconds: 5400 });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const foreignRequests: string[] = [];
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (!["data:", "blob:"].includes(url.protocol) && url.origin !== server.baseUrl) foreignRequests.push(request.url());
  });
  await page.goto(`${server.baseUrl}/graphql`);
  await page.waitForSelector(".graphiql-execute-button", { timeout: 30_000 });

  await page.getByRole("tab", { name: "Headers" }).or(page.getByRole("button", { name: "Headers" })).first().click();
  const headersEditor = page.locator('.graphiql-editor-tool .monaco-editor[data-uri*="headers"]').first();
  await headersEditor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${server.staffToken}` }));

  // The example search (FindCustomer) opens with its variable filled in: it runs on the first click.
  await page.locator(".graphiql-execute-button").click();
  const response = page.locator(".graphiql-response");
  fs.mkdirSync(artifacts, { recursive: true });
  await response.getByText(customer.email).first().waitFor({ timeout: 30_000 }).catch(async (error: unknown) => {
    await page.screenshot({ path: path.join(artifacts, "playground-failure.png") });
    throw error;
  });
  const shown = await response.innerText();
  expect(shown).toContain(customer.id);
  expect(shown).toContain("1.5");
  await page.screenshot({ path: path.join(artifacts, "playground.png") });
  // The token is kept for this tab only: in sessionStorage, never in the origin's localStorage
  // (read from a page of the same origin without the console's storage switch).
  await page.waitForFunction((token) => JSON.stringify(Object.entries(window.sessionStorage)).includes(token), server.staffToken, { timeout: 10_000 });
  const session = await page.evaluate(() => JSON.stringify(Object.entries(window.sessionStorage)));
  await page.goto(`${server.baseUrl}/healthz`);
  const local = await page.evaluate(() => JSON.stringify(Object.entries(window.localStorage)));
  const stored = { session, local };
  expect(stored.session).toContain(server.staffToken);
  expect(stored.local).not.toContain(server.staffToken);

  expect(foreignRequests).toEqual([]);
  await context.close();
});
