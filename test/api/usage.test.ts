// Where the hours went: charged seconds per UTC day, week or month, optionally per endpoint.
import { startTestServer, type TestCustomer, type TestServer } from "../support/test-server";

let server: TestServer;
let customer: TestCustomer;
const dayMs = 86_400_000;
let firstDay: Date;

const reserveMutation = `mutation($input: ReserveCreditsInput!) { reserveCredits(input: $input) { reservation { id } } }`;
const confirmMutation = `mutation($input: ConfirmReservationInput!) { confirmReservation(input: $input) { reservation { status } } }`;
const usageQuery = `query($from: DateTime!, $to: DateTime!, $granularity: UsageGranularity, $byEndpoint: Boolean) {
  me { usage(from: $from, to: $to, granularity: $granularity, byEndpoint: $byEndpoint) { start endpoint chargedSeconds unbilledSeconds jobs } }
}`;

async function job(endpoint: string, reservedSeconds: number, actualSeconds: number): Promise<void> {
  const reserved: any = await server.graphql(reserveMutation, { input: { estimatedSeconds: reservedSeconds, endpoint } }, customer.token);
  const confirmed: any = await server.graphql(confirmMutation, { input: { reservationId: reserved.data.reserveCredits.reservation.id, actualSeconds } }, customer.token);
  expect(confirmed.data.confirmReservation.reservation.status).toBe("CONFIRMED");
}

beforeAll(async () => {
  server = await startTestServer();
  customer = await server.createCustomer({ initialSeconds: 1000 });
  // Noon of the next UTC day, so that no job settles across a midnight while the test runs.
  const now = server.clock.now();
  firstDay = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  server.clock.advanceSeconds((firstDay.getTime() + dayMs / 2 - now.getTime()) / 1000);
  // Released and still-active reservations are not usage.
  const released: any = await server.graphql(reserveMutation, { input: { estimatedSeconds: 5, endpoint: "stems" } }, customer.token);
  await server.graphql(`mutation($id: ID!) { releaseReservation(input: { reservationId: $id }) { balance { secondsRemaining } } }`, { id: released.data.reserveCredits.reservation.id }, customer.token);
  await job("stems", 100, 60);
  await job("mastering", 100, 30);
  server.clock.advanceSeconds(2 * 86_400);
  await server.graphql(reserveMutation, { input: { estimatedSeconds: 5, endpoint: "stems" } }, customer.token);
  await job("stems", 100, 100);
  // The balance runs out: 105 left after the jobs above and this reservation's 700.
  await job("stems", 700, 900);
});
afterAll(() => server.close());

const day = (offset: number) => new Date(firstDay.getTime() + offset * dayMs).toISOString();

it("sums each UTC day of the range, empty days as zeros", async () => {
  const answer: any = await server.graphql(usageQuery, { from: day(0), to: day(3) }, customer.token);
  expect(answer.errors).toBeUndefined();
  expect(answer.data.me.usage).toEqual([
    { start: day(0), endpoint: null, chargedSeconds: 90, unbilledSeconds: 0, jobs: 2 },
    { start: day(1), endpoint: null, chargedSeconds: 0, unbilledSeconds: 0, jobs: 0 },
    { start: day(2), endpoint: null, chargedSeconds: 905, unbilledSeconds: 95, jobs: 2 },
  ]);
});

it("splits by endpoint, listing only what had jobs", async () => {
  const answer: any = await server.graphql(usageQuery, { from: day(0), to: day(3), byEndpoint: true }, customer.token);
  expect(answer.data.me.usage).toEqual([
    { start: day(0), endpoint: "mastering", chargedSeconds: 30, unbilledSeconds: 0, jobs: 1 },
    { start: day(0), endpoint: "stems", chargedSeconds: 60, unbilledSeconds: 0, jobs: 1 },
    { start: day(2), endpoint: "stems", chargedSeconds: 905, unbilledSeconds: 95, jobs: 2 },
  ]);
});

it("groups by month with the same totals, and counts only settlements inside [from, to)", async () => {
  const month: any = await server.graphql(usageQuery, { from: day(0), to: day(3), granularity: "MONTH" }, customer.token);
  const buckets = month.data.me.usage as { chargedSeconds: number; jobs: number }[];
  expect(buckets.reduce((sum, bucket) => sum + bucket.chargedSeconds, 0)).toBe(995);
  expect(buckets.reduce((sum, bucket) => sum + bucket.jobs, 0)).toBe(4);
  const laterOnly: any = await server.graphql(usageQuery, { from: day(1), to: day(3), granularity: "WEEK" }, customer.token);
  expect((laterOnly.data.me.usage as { chargedSeconds: number }[]).reduce((sum, bucket) => sum + bucket.chargedSeconds, 0)).toBe(905);
});

it("refuses an empty or reversed range and one longer than 366 days", async () => {
  for (const range of [{ from: day(3), to: day(0) }, { from: day(0), to: day(0) }, { from: day(0), to: day(367) }, { from: "0000-01-01T00:00:00Z", to: day(0) }]) {
    const answer: any = await server.graphql(usageQuery, range, customer.token);
    expect(answer.errors?.map((error: any) => error.extensions.code)).toEqual(["BAD_USER_INPUT"]);
  }
});
