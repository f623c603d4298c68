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

describe("the checks that read across modules", () => {
  // Each tampering below is permanent (the ledger is append-only): its own database.
  let tampered: TestServer;
  beforeAll(async () => {
    tampered = await startTestServer();
  });
  afterAll(() => tampered.close());

  const failing = async () => (await runAudit(tampered.database, tampered.config)).filter((check) => check.violations.length > 0).map((check) => check.name);

  it("flags a license whose seat tier is not its owner's", async () => {
    const customer = await tampered.createCustomer({ initialSeconds: 0, tier: "STARTER" });
    await tampered.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { created } }`, { id: customer.id }, tampered.staffToken);
    expect(await failing()).toEqual([]);
    await tampered.sql.query("UPDATE license SET tier = 'STUDIO' WHERE customer_id = $1", [customer.id]);
    expect(await failing()).toEqual(["each license's seat tier is its owner's tier"]);
    await tampered.sql.query("UPDATE license SET tier = 'STARTER' WHERE customer_id = $1", [customer.id]);
  });

  it("flags a Stripe grant in the ledger without its payment effect", async () => {
    const customer = await tampered.createCustomer({ initialSeconds: 0 });
    await tampered.sql.query("UPDATE credit_balance SET seconds_remaining = 5 WHERE customer_id = $1", [customer.id]);
    await tampered.sql.query(
      "INSERT INTO ledger_entry (customer_id, kind, delta_seconds, balance_after, actor) VALUES ($1, 'GRANT', 5, 5, 'stripe:evt_forged')",
      [customer.id],
    );
    expect(await failing()).toEqual(["each balance is the sum over the customer's grants", "every Stripe grant in the ledger has its payment effect"]);
  });

  it("flags a grant whose counters disagree with its ledger entries or the reservations holding it", async () => {
    const customer = await tampered.createCustomer({ initialSeconds: 1000 });
    await tampered.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 300, endpoint: "audit" }) { replayed } }`, {}, customer.token);
    const earlierTampering = await failing();
    // Seconds moved from held to remaining in both the grant and the balance, with no ledger entry and no settled reservation.
    await tampered.sql.query("UPDATE credit_grant SET held_seconds = held_seconds - 50, remaining_seconds = remaining_seconds + 50 WHERE customer_id = $1", [customer.id]);
    await tampered.sql.query("UPDATE credit_balance SET seconds_reserved = seconds_reserved - 50, seconds_remaining = seconds_remaining + 50 WHERE customer_id = $1", [customer.id]);
    expect((await failing()).filter((name) => !earlierTampering.includes(name))).toEqual([
      "each customer's ledger deltas sum to the balance",
      "secondsReserved equals the sum of ACTIVE reservations",
      "each grant's ledger entries sum to its remaining seconds, past its ledger opening",
      "each grant's held seconds are what ACTIVE reservations hold of it",
    ]);
  });

  it("refuses, in the database, a grant whose parts do not sum to what it granted", async () => {
    const customer = await tampered.createCustomer({ initialSeconds: 1000 });
    await expect(tampered.sql.query("UPDATE credit_grant SET remaining_seconds = remaining_seconds + 1 WHERE customer_id = $1", [customer.id])).rejects.toThrow(
      /credit_grant_parts_sum_to_granted/,
    );
  });
});
