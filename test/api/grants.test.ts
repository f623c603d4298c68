// Grants through the HTTP API on a real database: spending order, exact expiry, the sweeper's
// GRANT_EXPIRED, staff grants and deductions, expiry notices, and races with exact numbers.
import { expectConsistentLedger, storedGrants } from "../support/ledger-invariants";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink";
import { drainOutbox, errorCodes, startTestServer, type TestCustomer, type TestServer } from "../support/test-server";

const hour = 3600;
const day = 86_400;
const ttlSeconds = 3 * day;

let smtp: SmtpSink;
let server: TestServer;
beforeAll(async () => {
  smtp = await startSmtpSink();
  server = await startTestServer({ environment: { RESERVATION_TTL_SECONDS: String(ttlSeconds), SMTP_URL: smtp.url } });
});
afterAll(async () => {
  await server.close();
  await smtp.close();
});

const grantFields = "id source grantedSeconds remainingSeconds heldSeconds expiredSeconds expiresAt note";
const grantsQuery = `query($id: ID!, $spent: Boolean) { customer(id: $id) {
  balance { secondsRemaining secondsReserved nextExpiry { seconds at } }
  grants(includeSpent: $spent) { edges { node { ${grantFields} } } } } }`;

const inSeconds = (seconds: number) => new Date(server.clock.now().getTime() + seconds * 1000).toISOString();

async function staffGrant(customerId: string, deltaSeconds: number, expiresAt?: string): Promise<void> {
  const result = await server.graphql(
    `mutation($input: AdjustCreditsInput!) { adjustCredits(input: $input) { id } }`,
    { input: { customerId, deltaSeconds, note: `grant of ${deltaSeconds}`, expiresAt } },
    server.staffToken,
  );
  expect(result.errors).toBeUndefined();
}

async function readGrants(customerId: string, includeSpent = false): Promise<any> {
  const result: any = await server.graphql(grantsQuery, { id: customerId, spent: includeSpent }, server.staffToken);
  expect(result.errors).toBeUndefined();
  return { balance: result.data.customer.balance, grants: result.data.customer.grants.edges.map((edge: any) => edge.node) };
}

async function reserve(customer: TestCustomer, estimatedSeconds: number): Promise<any> {
  return server.graphql(
    `mutation($input: ReserveCreditsInput!) { reserveCredits(input: $input) { reservation { id } balance { secondsRemaining secondsReserved } } }`,
    { input: { estimatedSeconds, endpoint: "render" } },
    customer.token,
  );
}

async function confirm(customer: TestCustomer, reservationId: string, actualSeconds: number): Promise<any> {
  return server.graphql(
    `mutation($input: ConfirmReservationInput!) { confirmReservation(input: $input) { balance { secondsRemaining secondsReserved } } }`,
    { input: { reservationId, actualSeconds } },
    customer.token,
  );
}

async function release(customer: TestCustomer, reservationId: string): Promise<any> {
  return server.graphql(
    `mutation($input: ReleaseReservationInput!) { releaseReservation(input: $input) { balance { secondsRemaining secondsReserved } } }`,
    { input: { reservationId } },
    customer.token,
  );
}

async function ledgerOf(customerId: string): Promise<{ kind: string; delta_seconds: number; grant_id: string | null; reservation_id: string | null }[]> {
  const rows = await server.sql.query("SELECT kind, delta_seconds, grant_id, reservation_id FROM ledger_entry WHERE customer_id = $1 ORDER BY id", [customerId]);
  return rows.rows;
}

describe("spending order", () => {
  it("holds the soonest-expiring seconds first, never-expiring last, and records what each reservation holds", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    await staffGrant(customer.id, 1000, inSeconds(10 * day));
    await staffGrant(customer.id, 1000, inSeconds(2 * day));
    const before = await readGrants(customer.id);
    expect(before.grants.map((grant: any) => [grant.source, grant.remainingSeconds])).toEqual([
      ["STAFF", 1000],
      ["STAFF", 1000],
      ["INITIAL", 1000],
    ]);
    const [soon, later, initial] = before.grants.map((grant: any) => grant.id);
    expect(before.balance.nextExpiry).toEqual({ seconds: 1000, at: before.grants[0].expiresAt });

    const reserved: any = await reserve(customer, 2500);
    expect(reserved.data.reserveCredits.balance).toEqual({ secondsRemaining: 500, secondsReserved: 2500 });
    const holding = await readGrants(customer.id);
    expect(holding.grants.map((grant: any) => [grant.id, grant.remainingSeconds, grant.heldSeconds])).toEqual([
      [soon, 0, 1000],
      [later, 0, 1000],
      [initial, 500, 500],
    ]);
    const reservationId = reserved.data.reserveCredits.reservation.id;
    expect((await ledgerOf(customer.id)).filter((entry) => entry.kind === "RESERVE")).toEqual([
      { kind: "RESERVE", delta_seconds: -1000, grant_id: soon, reservation_id: reservationId },
      { kind: "RESERVE", delta_seconds: -1000, grant_id: later, reservation_id: reservationId },
      { kind: "RESERVE", delta_seconds: -500, grant_id: initial, reservation_id: reservationId },
    ]);

    // 1,200 s charged: all of the soonest grant, 200 s of the next; the rest goes back where it came from.
    const confirmed: any = await confirm(customer, reservationId, 1200);
    expect(confirmed.data.confirmReservation.balance).toEqual({ secondsRemaining: 1800, secondsReserved: 0 });
    const after = await readGrants(customer.id, true);
    expect(after.grants.map((grant: any) => [grant.id, grant.remainingSeconds, grant.heldSeconds])).toEqual([
      [soon, 0, 0],
      [later, 800, 0],
      [initial, 1000, 0],
    ]);
    const ledger = await server.graphql(`query($id: ID!) { customer(id: $id) { ledger(first: 2) { edges { node { kind deltaSeconds grantId } } } } }`, { id: customer.id }, server.staffToken);
    expect((ledger.data as any).customer.ledger.edges.map((edge: any) => edge.node)).toEqual([
      { kind: "CONFIRM", deltaSeconds: 500, grantId: initial },
      { kind: "CONFIRM", deltaSeconds: 800, grantId: later },
    ]);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("takes a staff deduction soonest-expiring first, all or nothing", async () => {
    const customer = await server.createCustomer({ initialSeconds: 500 });
    await staffGrant(customer.id, 300, inSeconds(day));
    const tooMuch = await server.graphql(
      `mutation($input: AdjustCreditsInput!) { adjustCredits(input: $input) { id } }`,
      { input: { customerId: customer.id, deltaSeconds: -801, note: "too much" } },
      server.staffToken,
    );
    expect(errorCodes(tooMuch)).toEqual(["INSUFFICIENT_CREDITS"]);
    await staffGrant(customer.id, -400);
    const { grants, balance } = await readGrants(customer.id, true);
    expect(grants.map((grant: any) => [grant.source, grant.remainingSeconds])).toEqual([
      ["STAFF", 0],
      ["INITIAL", 400],
    ]);
    expect(balance.secondsRemaining).toBe(400);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("refuses an expiry in the past, and an expiry on a deduction", async () => {
    const customer = await server.createCustomer({ initialSeconds: 500 });
    const adjust = (deltaSeconds: number, expiresAt: string) =>
      server.graphql(`mutation($input: AdjustCreditsInput!) { adjustCredits(input: $input) { id } }`, { input: { customerId: customer.id, deltaSeconds, note: "n", expiresAt } }, server.staffToken);
    const past = await adjust(100, inSeconds(-1));
    expect(errorCodes(past)).toEqual(["BAD_USER_INPUT"]);
    // A refusal by the service, not of the document: 200 with the error, like every BAD_USER_INPUT of a resolver.
    expect(past.status).toBe(200);
    expect(errorCodes(await adjust(-100, inSeconds(day)))).toEqual(["BAD_USER_INPUT"]);
  });
});

describe("expiry", () => {
  it("stops counting a grant's remainder at its instant, before any sweep; the sweeper then writes one GRANT_EXPIRED", async () => {
    const customer = await server.createCustomer({ initialSeconds: 100 });
    await staffGrant(customer.id, 900, inSeconds(600));
    expect((await readGrants(customer.id)).balance.secondsRemaining).toBe(1000);
    server.clock.advanceSeconds(590);
    expect((await readGrants(customer.id)).balance).toMatchObject({ secondsRemaining: 1000, nextExpiry: { seconds: 900 } });
    server.clock.advanceSeconds(20);
    const expired = await readGrants(customer.id);
    expect(expired.balance).toEqual({ secondsRemaining: 100, secondsReserved: 0, nextExpiry: null });
    expect(expired.grants.map((grant: any) => grant.source)).toEqual(["INITIAL"]);
    const withSpent = await readGrants(customer.id, true);
    expect(withSpent.grants.map((grant: any) => [grant.source, grant.remainingSeconds, grant.expiredSeconds])).toEqual([
      ["STAFF", 0, 900],
      ["INITIAL", 100, 0],
    ]);
    // Nothing written yet, and a reservation cannot use the expired seconds.
    expect((await ledgerOf(customer.id)).map((entry) => entry.kind)).toEqual(["GRANT", "ADJUSTMENT"]);
    expect(errorCodes(await reserve(customer, 101))).toEqual(["INSUFFICIENT_CREDITS"]);

    await Promise.all([server.services.credits.sweepExpired(), server.services.credits.sweepExpired(), server.services.credits.sweepExpired()]);
    await server.services.credits.sweepExpired();
    const staffGrantId = withSpent.grants[0].id;
    expect((await ledgerOf(customer.id)).filter((entry) => entry.kind === "GRANT_EXPIRED")).toEqual([
      { kind: "GRANT_EXPIRED", delta_seconds: -900, grant_id: staffGrantId, reservation_id: null },
    ]);
    expect((await readGrants(customer.id)).balance.secondsRemaining).toBe(100);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("expires at once the seconds a reservation gives back to a grant that expired meanwhile", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    await staffGrant(customer.id, 1000, inSeconds(day));
    await staffGrant(customer.id, 1000);
    const reserved: any = await reserve(customer, 1500);
    const reservationId = reserved.data.reserveCredits.reservation.id;
    server.clock.advanceSeconds(day + 10);
    // Still ACTIVE (its TTL is 3 days); what it holds of the expired grant no longer counts as the customer's once back.
    const released: any = await release(customer, reservationId);
    expect(released.data.releaseReservation.balance).toEqual({ secondsRemaining: 1000, secondsReserved: 0 });
    const grants = await storedGrants(server.sql, customer.id);
    expect(grants.map((grant) => [grant.remaining, grant.held, grant.expired])).toEqual([
      [0, 0, 1000],
      [1000, 0, 0],
    ]);
    expect((await ledgerOf(customer.id)).slice(-3).map((entry) => [entry.kind, entry.delta_seconds])).toEqual([
      ["RELEASE", 1000],
      ["GRANT_EXPIRED", -1000],
      ["RELEASE", 500],
    ]);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("emails once, EXPIRY_NOTICE_DAYS ahead, about a grant of an hour or more expiring unspent", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    await staffGrant(customer.id, 2 * hour, inSeconds(6 * day));
    await staffGrant(customer.id, hour - 1, inSeconds(6 * day));
    await staffGrant(customer.id, 5 * hour, inSeconds(30 * day));
    const before = smtp.received.length;
    const queued = await Promise.all([server.services.credits.queueExpiryNotices(), server.services.credits.queueExpiryNotices()]);
    expect(queued.reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(1);
    expect(await server.services.credits.queueExpiryNotices()).toBe(0);
    await drainOutbox(server);
    const mine = smtp.received.slice(before).filter((mail) => mail.to.includes(customer.email));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.raw).toContain("Subject: Some of your Splice processing time expires soon");
    expect(mine[0]!.raw.replace(/=\r?\n/g, "")).toContain("2 h of your processing time expire at");
  });
});

describe("races, with exact final numbers", () => {
  it("reservations spanning two grants, then settled racing the sweeper after one grant expired", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    await staffGrant(customer.id, 1000, inSeconds(600));
    await staffGrant(customer.id, 1000);
    const attempts = await Promise.all(Array.from({ length: 10 }, () => reserve(customer, 300)));
    const reserved = attempts.filter((attempt) => attempt.data?.reserveCredits);
    expect(reserved).toHaveLength(6);
    expect(attempts.filter((attempt) => errorCodes(attempt).includes("INSUFFICIENT_CREDITS"))).toHaveLength(4);
    // The expiring grant: 3 reservations of 300 and 100 of the one spanning both grants.
    const [expiring, lasting] = await storedGrants(server.sql, customer.id);
    expect([expiring!.held, lasting!.held, lasting!.remaining]).toEqual([1000, 800, 200]);

    server.clock.advanceSeconds(601);
    const ids = reserved.map((attempt) => attempt.data.reserveCredits.reservation.id);
    const sweeps = Array.from({ length: 3 }, () => server.services.credits.sweepExpired());
    const confirmations = await Promise.all(ids.map((id) => confirm(customer, id, 100)));
    await Promise.all(sweeps);
    expect(confirmations.every((result) => result.errors === undefined)).toBe(true);
    // Each job charged 100 s from the soonest-expiring grant it held; the expired grant's other 600 s expired on return.
    const [expired, kept] = await storedGrants(server.sql, customer.id);
    expect([expired!.charged, expired!.expired, expired!.remaining, expired!.held]).toEqual([400, 600, 0, 0]);
    expect([kept!.charged, kept!.remaining, kept!.held]).toEqual([200, 800, 0]);
    const stored = await expectConsistentLedger(server.sql, customer.id);
    expect(stored.secondsRemaining).toBe(800);
  });

  it("a confirmation and the sweeper on the same grant at its expiry", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    await staffGrant(customer.id, 1000, inSeconds(600));
    const reserved: any = await reserve(customer, 500);
    server.clock.advanceSeconds(601);
    const [confirmed] = await Promise.all([
      confirm(customer, reserved.data.reserveCredits.reservation.id, 200),
      server.services.credits.sweepExpired(),
      server.services.credits.sweepExpired(),
    ]);
    expect(confirmed.data.confirmReservation.balance).toEqual({ secondsRemaining: 0, secondsReserved: 0 });
    const [grant] = await storedGrants(server.sql, customer.id);
    expect([grant!.charged, grant!.expired, grant!.remaining, grant!.held]).toEqual([200, 800, 0, 0]);
    const expiries = (await ledgerOf(customer.id)).filter((entry) => entry.kind === "GRANT_EXPIRED").map((entry) => entry.delta_seconds);
    expect(expiries.sort((a, b) => a - b)).toEqual([-500, -300]);
    await expectConsistentLedger(server.sql, customer.id);
  });
});
