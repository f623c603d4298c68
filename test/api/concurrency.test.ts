// Many simultaneous requests over HTTP; every test asserts exact counts and final states.
import type { BalanceTransactions } from "../../src/modules/credits/balance-transactions";
import { succeed } from "../../src/platform/failures";
import { expectConsistentLedger } from "../support/ledger-invariants";
import { errorCodes, startTestServer, type GraphQLResponse, type TestServer } from "../support/test-server";

const reserveMutation = `mutation Reserve($input: ReserveCreditsInput!) {
  reserveCredits(input: $input) { replayed reservation { id } balance { secondsRemaining secondsReserved } } }`;
const confirmMutation = `mutation Confirm($input: ConfirmReservationInput!) {
  confirmReservation(input: $input) { reservation { status chargedSeconds } balance { secondsRemaining } } }`;
const releaseMutation = `mutation Release($input: ReleaseReservationInput!) {
  releaseReservation(input: $input) { reservation { status } } }`;
const adjustMutation = `mutation Adjust($input: AdjustCreditsInput!) { adjustCredits(input: $input) { id } }`;

let server: TestServer;
let secondInstance: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  // A second server process on the same database, as behind a load balancer.
  secondInstance = await startTestServer({ databaseUrl: server.databaseUrl });
});
afterAll(async () => {
  await secondInstance.close();
  await server.close();
});

const succeeded = (responses: GraphQLResponse[]) => responses.filter((response) => !response.errors);
const countCodes = (responses: GraphQLResponse[]) =>
  responses.flatMap((response) => errorCodes(response)).reduce<Record<string, number>>((counts, code) => {
    counts[code] = (counts[code] ?? 0) + 1;
    return counts;
  }, {});

function reserveFrom(instance: TestServer, token: string, estimatedSeconds: number, idempotencyKey?: string) {
  return instance.graphql(reserveMutation, { input: { estimatedSeconds, endpoint: "render", idempotencyKey } }, token);
}

it("10 reservations of 360 s on 1,800 s: exactly 5 succeed, balance 0", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1800 });
  const responses = await Promise.all(Array.from({ length: 10 }, () => reserveFrom(server, customer.token, 360)));
  expect(succeeded(responses)).toHaveLength(5);
  expect(countCodes(responses)).toEqual({ INSUFFICIENT_CREDITS: 5 });
  const stored = await expectConsistentLedger(server.sql, customer.id);
  expect(stored).toMatchObject({ secondsRemaining: 0, secondsReserved: 1800 });
});

it("the same race split over two server instances still lets exactly 5 through", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1800 });
  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, index) => reserveFrom(index % 2 ? secondInstance : server, customer.token, 360)),
  );
  expect(succeeded(responses)).toHaveLength(5);
  expect(countCodes(responses)).toEqual({ INSUFFICIENT_CREDITS: 15 });
  expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 0, secondsReserved: 1800 });
});

it("the active-reservation limit holds across two instances: what each read before its transaction is checked", async () => {
  // Each instance counts a customer's ACTIVE reservations before its transaction begins; the
  // transaction proceeds only on the balance version that count was read at.
  const limited = { ACTIVE_RESERVATIONS_PER_CUSTOMER_MAX: "3" };
  const first = await startTestServer({ databaseUrl: server.databaseUrl, environment: limited });
  const second = await startTestServer({ databaseUrl: server.databaseUrl, environment: limited });
  try {
    for (let round = 0; round < 3; round += 1) {
      const customer = await server.createCustomer({ initialSeconds: 10_000 });
      const responses = await Promise.all(Array.from({ length: 12 }, (_, index) => reserveFrom(index % 2 ? second : first, customer.token, 60)));
      expect(succeeded(responses)).toHaveLength(3);
      expect(countCodes(responses)).toEqual({ TOO_MANY_REQUESTS: 9 });
      expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 10_000 - 180, secondsReserved: 180 });
    }
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

it("a transaction whose reads went stale before it began is run again from the reads, under the customer's lock", async () => {
  // The window between the reads and the transaction's snapshot is one round trip: here another
  // instance commits a reservation inside it, on purpose.
  const balances = (server.services.credits as unknown as { balances: BalanceTransactions }).balances;
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const versionOf = async () => BigInt((await server.sql.query("SELECT version FROM credit_balance WHERE customer_id = $1", [customer.id])).rows[0].version);
  const readVersions: bigint[] = [];
  const workedOn: bigint[] = [];
  const before = { conflicts: server.services.transactor.counters.conflicts, locked: server.services.customerSerializer.lockCounters.retriedUnderLock };
  const outcome = await balances.run(
    customer.id,
    async () => {
      const version = await versionOf();
      readVersions.push(version);
      if (readVersions.length === 1) expect((await reserveFrom(secondInstance, customer.token, 100)).errors).toBeUndefined();
      return { version, active: [], found: null };
    },
    async (state) => {
      workedOn.push(state.opening.version);
      return succeed(state.balance.secondsRemaining);
    },
  );
  expect(outcome).toEqual({ ok: true, value: 900 });
  expect(readVersions).toEqual([readVersions[0], readVersions[0]! + 1n]);
  expect(workedOn).toEqual([readVersions[0]! + 1n]);
  expect(server.services.transactor.counters.conflicts - before.conflicts).toBe(1);
  expect(server.services.customerSerializer.lockCounters.retriedUnderLock - before.locked).toBe(1);
});

it("racing retries with one idempotency key create exactly one reservation", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1800 });
  const responses = await Promise.all(
    Array.from({ length: 12 }, (_, index) => reserveFrom(index % 2 ? secondInstance : server, customer.token, 600, "job-42")),
  );
  expect(succeeded(responses)).toHaveLength(12);
  const ids = new Set(responses.map((response: any) => response.data.reserveCredits.reservation.id));
  expect(ids.size).toBe(1);
  expect(responses.filter((response: any) => response.data.reserveCredits.replayed === false)).toHaveLength(1);
  expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 1200, secondsReserved: 600 });
});

it("a confirmation racing a release of one reservation: exactly one settles it", async () => {
  for (let round = 0; round < 5; round += 1) {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    const id = ((await reserveFrom(server, customer.token, 400)).data as any).reserveCredits.reservation.id;
    const responses = await Promise.all([
      server.graphql(confirmMutation, { input: { reservationId: id, actualSeconds: 100 } }, customer.token),
      secondInstance.graphql(releaseMutation, { input: { reservationId: id } }, customer.token),
      server.graphql(releaseMutation, { input: { reservationId: id } }, customer.token),
    ]);
    const statuses = await server.sql.query("SELECT status FROM credit_reservation WHERE id = $1", [id]);
    const settlements = await server.sql.query(
      "SELECT count(*)::int AS n FROM ledger_entry WHERE reservation_id = $1 AND kind IN ('CONFIRM', 'RELEASE')",
      [id],
    );
    expect(settlements.rows[0].n).toBe(1);
    // Only one settlement wins; a repeated release never succeeds twice.
    expect(succeeded(responses)).toHaveLength(1);
    expect(countCodes(responses)).toEqual({ RESERVATION_SETTLED: 2 });
    const expected = statuses.rows[0].status === "CONFIRMED" ? 900 : 1000;
    expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: expected, secondsReserved: 0 });
  }
});

it("identical confirmations racing all get the one result, charged once", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const id = ((await reserveFrom(server, customer.token, 400)).data as any).reserveCredits.reservation.id;
  const responses = await Promise.all(
    Array.from({ length: 8 }, (_, index) =>
      (index % 2 ? secondInstance : server).graphql(confirmMutation, { input: { reservationId: id, actualSeconds: 700 } }, customer.token),
    ),
  );
  expect(succeeded(responses)).toHaveLength(8);
  for (const response of responses) {
    expect((response.data as any).confirmReservation.reservation).toEqual({ status: "CONFIRMED", chargedSeconds: 700 });
  }
  expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 300, secondsReserved: 0 });
});

it("concurrent deductions never take the balance below zero", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const responses = await Promise.all(
    Array.from({ length: 10 }, (_, index) =>
      (index % 2 ? secondInstance : server).graphql(
        adjustMutation,
        { input: { customerId: customer.id, deltaSeconds: -300, note: "correction" } },
        server.staffToken,
      ),
    ),
  );
  expect(succeeded(responses)).toHaveLength(3);
  expect(countCodes(responses)).toEqual({ INSUFFICIENT_CREDITS: 7 });
  expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 100 });
});

it("a storm of mixed operations on a few customers leaves every ledger consistent", async () => {
  const customers = await Promise.all([0, 1, 2].map(() => server.createCustomer({ initialSeconds: 5000 })));
  const work: Promise<unknown>[] = [];
  for (let index = 0; index < 60; index += 1) {
    const customer = customers[index % customers.length]!;
    const instance = index % 2 ? secondInstance : server;
    work.push(
      (async () => {
        const reserved: any = await reserveFrom(instance, customer.token, 100 + (index % 7) * 50);
        const id = reserved.data?.reserveCredits?.reservation.id;
        if (!id) return;
        if (index % 3 === 0) {
          await instance.graphql(releaseMutation, { input: { reservationId: id } }, customer.token);
        } else {
          await instance.graphql(confirmMutation, { input: { reservationId: id, actualSeconds: (index * 37) % 900 } }, customer.token);
        }
      })(),
    );
  }
  await Promise.all(work);
  for (const customer of customers) {
    expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsReserved: 0 });
  }
});

/** Commits a direct write to the customer's balance row while a service transaction waits for it. */
async function forceOneConflict(instance: TestServer, customerId: string, request: () => Promise<GraphQLResponse>) {
  const writer = await instance.sql.connect();
  try {
    await writer.query("BEGIN");
    await writer.query("UPDATE credit_balance SET updated_at = now() WHERE customer_id = $1", [customerId]);
    const pending = request();
    await waitForLockWaiter(instance);
    await writer.query("COMMIT");
    return await pending;
  } finally {
    writer.release();
  }
}

async function waitForLockWaiter(instance: TestServer): Promise<void> {
  for (let poll = 0; poll < 200; poll += 1) {
    const waiting = await instance.sql.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    if (waiting.rows[0].n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("the request never waited for the row lock");
}

it("a serialization failure is retried and the request succeeds", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const conflictsBefore = server.services.transactor.counters.conflicts;
  const locks = server.services.customerSerializer.lockCounters;
  const lockedBefore = { ...locks };
  const response = await forceOneConflict(server, customer.id, () => reserveFrom(server, customer.token, 100));
  expect(response.errors).toBeUndefined();
  expect(server.services.transactor.counters.conflicts - conflictsBefore).toBe(1);
  // The retry ran under the customer's advisory lock; the first attempt had not taken it.
  expect(locks.retriedUnderLock - lockedBefore.retriedUnderLock).toBe(1);
  expect(locks.lockedFirst - lockedBefore.lockedFirst).toBe(0);
  // The customer is now contended: the next operation takes the lock first, until
  // CONTENDED_CUSTOMER_LOCK_SECONDS have passed; then it goes back to trying without it.
  expect((await reserveFrom(server, customer.token, 100)).errors).toBeUndefined();
  expect(locks.lockedFirst - lockedBefore.lockedFirst).toBe(1);
  server.clock.advanceSeconds(31);
  expect((await reserveFrom(server, customer.token, 100)).errors).toBeUndefined();
  expect(locks.lockedFirst - lockedBefore.lockedFirst).toBe(1);
  expect(locks.retriedUnderLock - lockedBefore.retriedUnderLock).toBe(1);
  expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 700, secondsReserved: 300 });
});

it("remembers at most CONTENDED_CUSTOMERS_MAX contended customers, forgetting the oldest", async () => {
  const forgetful = await startTestServer({ databaseUrl: server.databaseUrl, environment: { CONTENDED_CUSTOMERS_MAX: "1" } });
  try {
    const first = await server.createCustomer({ initialSeconds: 1000 });
    const second = await server.createCustomer({ initialSeconds: 1000 });
    const locks = forgetful.services.customerSerializer.lockCounters;
    for (const customer of [first, second]) {
      expect((await forceOneConflict(forgetful, customer.id, () => reserveFrom(forgetful, customer.token, 100))).errors).toBeUndefined();
    }
    expect(locks).toEqual({ retriedUnderLock: 2, lockedFirst: 0 });
    // The second is remembered, the first forgotten: only the second takes its lock first.
    expect((await reserveFrom(forgetful, second.token, 100)).errors).toBeUndefined();
    expect((await reserveFrom(forgetful, first.token, 100)).errors).toBeUndefined();
    expect(locks).toEqual({ retriedUnderLock: 2, lockedFirst: 1 });
  } finally {
    await forgetful.close();
  }
});

it("when retries run out the client gets SERVICE_UNAVAILABLE (503) and nothing is written", async () => {
  const impatient = await startTestServer({ databaseUrl: server.databaseUrl, environment: { TX_MAX_ATTEMPTS: "1" } });
  try {
    const customer = await server.createCustomer({ initialSeconds: 1000 });
    const response = await forceOneConflict(impatient, customer.id, () => reserveFrom(impatient, customer.token, 100));
    expect(response.status).toBe(503);
    expect(errorCodes(response)).toEqual(["SERVICE_UNAVAILABLE"]);
    expect(JSON.stringify(response.errors)).not.toMatch(/prisma|P20|40001|serializ|select|update/i);
    expect(impatient.services.transactor.counters.exhausted).toBe(1);
    expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 1000, secondsReserved: 0 });
  } finally {
    await impatient.close();
  }
});
