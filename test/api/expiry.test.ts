import pino from "pino";
import { expirySweeper } from "../../src/modules/credits/expiry-sweeper";
import { expectConsistentLedger } from "../support/ledger-invariants";
import { errorCodes, startTestServer, type TestServer } from "../support/test-server";

const ttlSeconds = 60;
const reserveMutation = `mutation Reserve($input: ReserveCreditsInput!) {
  reserveCredits(input: $input) { reservation { id status } balance { secondsRemaining secondsReserved } } }`;
const balanceQuery = `{ me { balance { secondsRemaining secondsReserved } reservations(status: EXPIRED) { edges { node { id status reason settledAt } } } } }`;

let server: TestServer;
let secondInstance: TestServer;
beforeAll(async () => {
  const environment = { RESERVATION_TTL_SECONDS: String(ttlSeconds) };
  server = await startTestServer({ environment });
  secondInstance = await startTestServer({ databaseUrl: server.databaseUrl, environment });
});
afterAll(async () => {
  await secondInstance.close();
  await server.close();
});

async function reserveSeconds(token: string, estimatedSeconds: number): Promise<string> {
  const result: any = await server.graphql(reserveMutation, { input: { estimatedSeconds, endpoint: "mix" } }, token);
  return result.data.reserveCredits.reservation.id;
}

function advanceBoth(seconds: number) {
  server.clock.advanceSeconds(seconds);
  secondInstance.clock.advanceSeconds(seconds);
}

it("an expired reservation stops counting at once, before any sweep", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const id = await reserveSeconds(customer.token, 600);
  advanceBoth(ttlSeconds + 1);
  const read: any = await server.graphql(balanceQuery, {}, customer.token);
  expect(read.data.me.balance).toEqual({ secondsRemaining: 1000, secondsReserved: 0 });
  expect(read.data.me.reservations.edges.map((edge: any) => edge.node)).toEqual([
    expect.objectContaining({ id, status: "EXPIRED", reason: "expired" }),
  ]);
  // Nothing has been written yet: the stored row is still ACTIVE.
  const stored = await server.sql.query("SELECT status FROM credit_reservation WHERE id = $1", [id]);
  expect(stored.rows[0].status).toBe("ACTIVE");

  const again: any = await server.graphql(reserveMutation, { input: { estimatedSeconds: 1000, endpoint: "mix" } }, customer.token);
  expect(again.data.reserveCredits.balance).toEqual({ secondsRemaining: 0, secondsReserved: 1000 });
  const settled = await server.sql.query("SELECT status, reason FROM credit_reservation WHERE id = $1", [id]);
  expect(settled.rows[0]).toEqual({ status: "EXPIRED", reason: "expired" });
  await expectConsistentLedger(server.sql, customer.id);
});

it("confirming or releasing an expired reservation is RESERVATION_SETTLED", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const id = await reserveSeconds(customer.token, 300);
  advanceBoth(ttlSeconds + 1);
  const confirm = await server.graphql(
    `mutation C($input: ConfirmReservationInput!) { confirmReservation(input: $input) { reservation { id } } }`,
    { input: { reservationId: id, actualSeconds: 10 } },
    customer.token,
  );
  expect(errorCodes(confirm)).toEqual(["RESERVATION_SETTLED"]);
  expect(confirm.errors![0]!.extensions!.status).toBe("EXPIRED");
  expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 1000, secondsReserved: 0 });
});

it("the sweeper settles expired reservations as EXPIRED with a system ledger entry", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const id = await reserveSeconds(customer.token, 250);
  advanceBoth(ttlSeconds + 1);
  const sweeper = expirySweeper(server.services.credits, 20, pino({ level: "silent" }));
  sweeper.start();
  try {
    for (let poll = 0; poll < 200; poll += 1) {
      const row = await server.sql.query("SELECT status FROM credit_reservation WHERE id = $1", [id]);
      if (row.rows[0].status === "EXPIRED") break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await sweeper.stop();
  }
  const entries = await server.sql.query(
    "SELECT kind, delta_seconds, actor FROM ledger_entry WHERE reservation_id = $1 ORDER BY id",
    [id],
  );
  expect(entries.rows).toEqual([
    { kind: "RESERVE", delta_seconds: -250, actor: `customer:${customer.id}` },
    { kind: "EXPIRE", delta_seconds: 250, actor: "system" },
  ]);
  await expectConsistentLedger(server.sql, customer.id);
});

it("several instances sweeping at once settle each reservation exactly once", async () => {
  const customers = await Promise.all([0, 1, 2, 3].map(() => server.createCustomer({ initialSeconds: 1000 })));
  const ids: string[] = [];
  for (const customer of customers) {
    ids.push(await reserveSeconds(customer.token, 100), await reserveSeconds(customer.token, 200));
  }
  advanceBoth(ttlSeconds + 1);
  await Promise.all([
    server.services.credits.sweepExpired(),
    secondInstance.services.credits.sweepExpired(),
    server.services.credits.sweepExpired(),
    secondInstance.services.credits.sweepExpired(),
  ]);
  const expires = await server.sql.query(
    "SELECT reservation_id, count(*)::int AS n FROM ledger_entry WHERE kind = 'EXPIRE' AND reservation_id = ANY($1::uuid[]) GROUP BY reservation_id",
    [ids],
  );
  expect(expires.rows).toHaveLength(ids.length);
  expect(expires.rows.every((row) => row.n === 1)).toBe(true);
  for (const customer of customers) {
    expect(await expectConsistentLedger(server.sql, customer.id)).toMatchObject({ secondsRemaining: 1000, secondsReserved: 0 });
  }
});
