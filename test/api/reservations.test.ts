import { expectConsistentLedger, storedBalance } from "../support/ledger-invariants";
import { errorCodes, startTestServer, type TestServer } from "../support/test-server";

const reserveMutation = `
  mutation Reserve($input: ReserveCreditsInput!) {
    reserveCredits(input: $input) {
      replayed
      balance { secondsRemaining secondsReserved hoursRemaining }
      reservation { id customerId endpoint reservedSeconds status expiresAt createdAt settledAt actualSeconds chargedSeconds unbilledSeconds reason }
    }
  }`;
const confirmMutation = `
  mutation Confirm($input: ConfirmReservationInput!) {
    confirmReservation(input: $input) {
      balance { secondsRemaining secondsReserved }
      reservation { id status actualSeconds chargedSeconds unbilledSeconds settledAt }
    }
  }`;
const releaseMutation = `
  mutation Release($input: ReleaseReservationInput!) {
    releaseReservation(input: $input) {
      balance { secondsRemaining secondsReserved }
      reservation { id status reason settledAt }
    }
  }`;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

async function reserve(token: string, estimatedSeconds: number, extra: Record<string, unknown> = {}) {
  return server.graphql(reserveMutation, { input: { estimatedSeconds, endpoint: "stem-separation", ...extra } }, token);
}

describe("reserveCredits", () => {
  it("moves seconds from remaining to reserved and records a RESERVE entry", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1800 });
    const result = await reserve(customer.token, 600);
    expect(result.status).toBe(200);
    const payload = result.data!.reserveCredits;
    expect(payload.replayed).toBe(false);
    expect(payload.balance).toEqual({ secondsRemaining: 1200, secondsReserved: 600, hoursRemaining: 1200 / 3600 });
    expect(payload.reservation).toMatchObject({
      customerId: customer.id,
      endpoint: "stem-separation",
      reservedSeconds: 600,
      status: "ACTIVE",
      settledAt: null,
      actualSeconds: null,
    });
    const ttlMs = Date.parse(payload.reservation.expiresAt) - Date.parse(payload.reservation.createdAt);
    expect(Math.abs(ttlMs - server.config.credits.reservationTtlSeconds * 1000)).toBeLessThan(5000);

    const ledger = await server.sql.query(
      "SELECT kind, delta_seconds, balance_after, reservation_id, actor FROM ledger_entry WHERE customer_id = $1 ORDER BY id",
      [customer.id],
    );
    expect(ledger.rows).toEqual([
      { kind: "GRANT", delta_seconds: 1800, balance_after: 1800, reservation_id: null, actor: "staff:test-staff" },
      { kind: "RESERVE", delta_seconds: -600, balance_after: 1200, reservation_id: payload.reservation.id, actor: `customer:${customer.id}` },
    ]);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("fails with INSUFFICIENT_CREDITS, HTTP 402 and the balance, changing nothing", async () => {
    const customer = await server.createCustomer({ initialSeconds: 500 });
    const result = await reserve(customer.token, 501);
    expect(result.status).toBe(402);
    expect(errorCodes(result)).toEqual(["INSUFFICIENT_CREDITS"]);
    expect(result.errors![0]!.extensions!.secondsRemaining).toBe(500);
    expect(await storedBalance(server.sql, customer.id)).toMatchObject({ secondsRemaining: 500, secondsReserved: 0 });
  });

  it("lets staff reserve for a named customer and requires the name", async () => {
    const customer = await server.createCustomer({ initialSeconds: 100 });
    const named = await reserve(server.staffToken, 40, { customerId: customer.id });
    expect(named.data!.reserveCredits.reservation.customerId).toBe(customer.id);
    const unnamed = await reserve(server.staffToken, 40);
    expect(errorCodes(unnamed)).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await reserve(server.staffToken, 40, { customerId: "" }))).toEqual(["BAD_USER_INPUT"]);
  });

  it("takes an empty customerId from a customer token as its own account, as an omitted one", async () => {
    const customer = await server.createCustomer({ initialSeconds: 100 });
    const reserved = await reserve(customer.token, 40, { customerId: "" });
    expect(reserved.data!.reserveCredits.reservation.customerId).toBe(customer.id);
  });

  it("returns the first reservation with replayed=true for a repeated idempotency key", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    const first = await reserve(customer.token, 300, { idempotencyKey: "job-1" });
    const again = await reserve(customer.token, 300, { idempotencyKey: "job-1" });
    expect(again.data!.reserveCredits.replayed).toBe(true);
    expect(again.data!.reserveCredits.reservation.id).toBe(first.data!.reserveCredits.reservation.id);
    expect(again.data!.reserveCredits.balance).toMatchObject({ secondsRemaining: 700, secondsReserved: 300 });
    const other = await reserve(customer.token, 300, { idempotencyKey: "job-2" });
    expect(other.data!.reserveCredits.replayed).toBe(false);
    expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 400, secondsReserved: 600 });
  });

  it("refuses an idempotency key reused with other parameters", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    await reserve(customer.token, 300, { idempotencyKey: "job-x" });
    const changed = await reserve(customer.token, 301, { idempotencyKey: "job-x" });
    expect(errorCodes(changed)).toEqual(["BAD_USER_INPUT"]);
  });

  it("scopes idempotency keys to their customer", async () => {
    const one = await server.createCustomer({ initialSeconds: 1000 });
    const two = await server.createCustomer({ initialSeconds: 1000 });
    await reserve(one.token, 100, { idempotencyKey: "shared" });
    const other = await reserve(two.token, 100, { idempotencyKey: "shared" });
    expect(other.data!.reserveCredits.replayed).toBe(false);
    expect(other.data!.reserveCredits.reservation.customerId).toBe(two.id);
  });

  it("limits the number of active reservations per customer", async () => {
    const limited = await startTestServer({ environment: { ACTIVE_RESERVATIONS_PER_CUSTOMER_MAX: "2" } });
    try {
      const customer = await limited.createCustomer({ initialSeconds: 1000 });
      const reserveOn = (seconds: number) =>
        limited.graphql(reserveMutation, { input: { estimatedSeconds: seconds, endpoint: "e" } }, customer.token);
      const first = await reserveOn(10);
      await reserveOn(10);
      const third = await reserveOn(10);
      expect(third.status).toBe(429);
      expect(errorCodes(third)).toEqual(["TOO_MANY_REQUESTS"]);
      expect(third.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(0);
      expect(third.headers.get("retry-after")).toBe(String(third.errors![0]!.extensions!.retryAfterSeconds));
      await limited.graphql(releaseMutation, { input: { reservationId: first.data!.reserveCredits.reservation.id } }, customer.token);
      expect((await reserveOn(10)).data!.reserveCredits.reservation.status).toBe("ACTIVE");
    } finally {
      await limited.close();
    }
  });
});

describe("confirmReservation", () => {
  it("refunds the unused part", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1800 });
    const reserved = await reserve(customer.token, 600);
    const id = reserved.data!.reserveCredits.reservation.id;
    const confirmed = await server.graphql(confirmMutation, { input: { reservationId: id, actualSeconds: 420 } }, customer.token);
    expect(confirmed.data!.confirmReservation).toMatchObject({
      balance: { secondsRemaining: 1380, secondsReserved: 0 },
      reservation: { status: "CONFIRMED", actualSeconds: 420, chargedSeconds: 420, unbilledSeconds: 0 },
    });
    expect(confirmed.data!.confirmReservation.reservation.settledAt).not.toBeNull();
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("takes the extra from the balance", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    const id = (await reserve(customer.token, 300)).data!.reserveCredits.reservation.id;
    const confirmed = await server.graphql(confirmMutation, { input: { reservationId: id, actualSeconds: 500 } }, customer.token);
    expect(confirmed.data!.confirmReservation).toMatchObject({
      balance: { secondsRemaining: 500, secondsReserved: 0 },
      reservation: { actualSeconds: 500, chargedSeconds: 500, unbilledSeconds: 0 },
    });
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("never goes below zero and records the rest as unbilled", async () => {
    const customer = await server.createCustomer({ initialSeconds: 400 });
    const id = (await reserve(customer.token, 300)).data!.reserveCredits.reservation.id;
    const confirmed = await server.graphql(confirmMutation, { input: { reservationId: id, actualSeconds: 1000 } }, customer.token);
    expect(confirmed.data!.confirmReservation).toMatchObject({
      balance: { secondsRemaining: 0, secondsReserved: 0 },
      reservation: { actualSeconds: 1000, chargedSeconds: 400, unbilledSeconds: 600 },
    });
    const stored = await expectConsistentLedger(server.sql, customer.id);
    expect(stored.secondsRemaining).toBe(0);
  });

  it("replays an identical confirmation and refuses any other settlement", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    const id = (await reserve(customer.token, 300)).data!.reserveCredits.reservation.id;
    const first = await server.graphql(confirmMutation, { input: { reservationId: id, actualSeconds: 200 } }, customer.token);
    const repeat = await server.graphql(confirmMutation, { input: { reservationId: id, actualSeconds: 200 } }, customer.token);
    expect(repeat.data!.confirmReservation).toEqual(first.data!.confirmReservation);
    const different = await server.graphql(confirmMutation, { input: { reservationId: id, actualSeconds: 250 } }, customer.token);
    expect(errorCodes(different)).toEqual(["RESERVATION_SETTLED"]);
    const release = await server.graphql(releaseMutation, { input: { reservationId: id } }, customer.token);
    expect(errorCodes(release)).toEqual(["RESERVATION_SETTLED"]);
    const ledgerCount = await server.sql.query("SELECT count(*)::int AS n FROM ledger_entry WHERE reservation_id = $1", [id]);
    expect(ledgerCount.rows[0].n).toBe(2);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("answers RESERVATION_NOT_FOUND for unknown and malformed ids", async () => {
    const customer = await server.createCustomer({ initialSeconds: 10 });
    for (const reservationId of ["00000000-0000-4000-8000-000000000000", "not-a-uuid"]) {
      const result = await server.graphql(confirmMutation, { input: { reservationId, actualSeconds: 1 } }, customer.token);
      expect(errorCodes(result)).toEqual(["RESERVATION_NOT_FOUND"]);
    }
  });
});

describe("releaseReservation", () => {
  it("returns every reserved second and keeps the reason", async () => {
    const customer = await server.createCustomer({ initialSeconds: 900 });
    const id = (await reserve(customer.token, 900)).data!.reserveCredits.reservation.id;
    const released = await server.graphql(releaseMutation, { input: { reservationId: id, reason: "render failed" } }, customer.token);
    expect(released.data!.releaseReservation).toMatchObject({
      balance: { secondsRemaining: 900, secondsReserved: 0 },
      reservation: { status: "RELEASED", reason: "render failed" },
    });
    const again = await server.graphql(releaseMutation, { input: { reservationId: id } }, customer.token);
    expect(errorCodes(again)).toEqual(["RESERVATION_SETTLED"]);
    expect(again.errors![0]!.extensions!.status).toBe("RELEASED");
    await expectConsistentLedger(server.sql, customer.id);
  });
});

describe("reading reservations", () => {
  it("lists a customer's reservations newest first, filtered by status, page by page", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) ids.push((await reserve(customer.token, 10)).data!.reserveCredits.reservation.id);
    await server.graphql(releaseMutation, { input: { reservationId: ids[1] } }, customer.token);
    const listQuery = `query List($status: ReservationStatus, $after: String) {
      me { reservations(status: $status, first: 2, after: $after) { edges { cursor node { id status } } pageInfo { hasNextPage endCursor } } }
    }`;
    const seen: string[] = [];
    let after: string | null = null;
    for (let pageNumber = 0; pageNumber < 5; pageNumber += 1) {
      const page: any = await server.graphql(listQuery, { status: "ACTIVE", after }, customer.token);
      const connection = page.data.me.reservations;
      seen.push(...connection.edges.map((edge: any) => edge.node.id));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    expect(seen).toEqual([ids[4], ids[3], ids[2], ids[0]]);
    const released: any = await server.graphql(listQuery, { status: "RELEASED" }, customer.token);
    expect(released.data.me.reservations.edges.map((edge: any) => edge.node.id)).toEqual([ids[1]]);
  });

  it("shows one reservation to its owner and staff only", async () => {
    const owner = await server.createCustomer({ initialSeconds: 100 });
    const stranger = await server.createCustomer({ initialSeconds: 100 });
    const id = (await reserve(owner.token, 10)).data!.reserveCredits.reservation.id;
    const query = `query One($id: ID!) { reservation(id: $id) { id reservedSeconds } }`;
    expect((await server.graphql(query, { id }, owner.token)).data!.reservation.id).toBe(id);
    expect((await server.graphql(query, { id }, server.staffToken)).data!.reservation.id).toBe(id);
    expect((await server.graphql(query, { id }, stranger.token)).data!.reservation).toBeNull();
    expect(errorCodes(await server.graphql(query, { id }))).toEqual(["UNAUTHENTICATED"]);
  });

  it("pages through the ledger, newest first", async () => {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    for (let index = 0; index < 3; index += 1) await reserve(customer.token, 100);
    const query = `query Ledger($after: String) { me { ledger(first: 2, after: $after) { edges { node { id kind deltaSeconds balanceAfter } } pageInfo { hasNextPage endCursor } } } }`;
    const first: any = await server.graphql(query, {}, customer.token);
    expect(first.data.me.ledger.edges.map((edge: any) => edge.node.balanceAfter)).toEqual([700, 800]);
    expect(first.data.me.ledger.pageInfo.hasNextPage).toBe(true);
    const second: any = await server.graphql(query, { after: first.data.me.ledger.pageInfo.endCursor }, customer.token);
    expect(second.data.me.ledger.edges.map((edge: any) => edge.node.kind)).toEqual(["RESERVE", "GRANT"]);
    expect(second.data.me.ledger.pageInfo.hasNextPage).toBe(false);
  });
});
