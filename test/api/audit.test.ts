import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { formatAudit, runAudit } from "../../src/ops/audit";
import { startTestServer, type TestServer } from "../support/test-server";

const execFileAsync = promisify(execFile);
const root = path.resolve(__dirname, "..", "..");

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

it("finds every invariant holding after real traffic, and a tampered balance when there is one", async () => {
  const customer = await server.createCustomer({ initialSeconds: 5000 });
  const reserved: any = await server.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 600, endpoint: "audit" }) { reservation { id } } }`, {}, customer.token);
  await server.graphql(`mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 900 }) { balance { secondsRemaining } } }`, { id: reserved.data.reserveCredits.reservation.id }, customer.token);
  await server.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 100, endpoint: "audit" }) { replayed } }`, {}, customer.token);
  const issued: any = await server.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: customer.id }, server.staffToken);
  await server.graphql(`mutation($key: String!) { activateLicense(input: { key: $key, device: { fingerprint: "a" } }) { customerId } }`, { key: issued.data.issueLicense.license.key });

  const clean = await runAudit(server.database, server.config);
  expect(clean.filter((check) => check.violations.length > 0)).toEqual([]);
  expect(formatAudit(clean)).toMatch(/all invariants hold$/);

  await server.sql.query("UPDATE credit_balance SET seconds_remaining = seconds_remaining + 7 WHERE customer_id = $1", [customer.id]);
  const broken = await runAudit(server.database, server.config);
  expect(broken.find((check) => check.name.startsWith("each customer's ledger"))!.violations).toEqual([
    expect.objectContaining({ customer_id: customer.id }),
  ]);

  const run = await execFileAsync(process.execPath, [require.resolve("tsx/cli"), path.join(root, "scripts", "audit.ts")], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: server.databaseUrl, NODE_ENV: "test" },
  }).then(
    () => ({ code: 0, stdout: "" }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  expect(run.code).toBe(1);
  expect(run.stdout).toContain("FAIL  each customer's ledger deltas sum to the balance");
  await server.sql.query("UPDATE credit_balance SET seconds_remaining = seconds_remaining - 7 WHERE customer_id = $1", [customer.id]);
});
