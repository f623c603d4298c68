// Low-balance alerts: one email each time the balance falls below the threshold, armed again
// once it rises above; exactly one however many reservations race across it.
import { startTestServer, type TestServer } from "../support/test-server";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink";

let server: TestServer;
let smtp: SmtpSink;
beforeAll(async () => {
  smtp = await startSmtpSink();
  server = await startTestServer({ environment: { SMTP_URL: smtp.url } });
});
afterAll(async () => {
  await server.close();
  await smtp.close();
});

const setAlert = `mutation($input: SetLowBalanceAlertInput!) { setLowBalanceAlert(input: $input) { id lowBalanceThresholdSeconds } }`;
const reserve = `mutation($input: ReserveCreditsInput!) { reserveCredits(input: $input) { reservation { id } } }`;
const release = `mutation($id: ID!) { releaseReservation(input: { reservationId: $id }) { balance { secondsRemaining } } }`;

async function alertJobs(customerId: string): Promise<number> {
  return (await server.sql.query("SELECT count(*)::int AS n FROM outbox_job WHERE kind = 'low_balance_email' AND customer_id = $1", [customerId])).rows[0].n;
}

it("emails once when the balance falls below the threshold, and again only after it rose above", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const set: any = await server.graphql(setAlert, { input: { thresholdSeconds: 500 } }, customer.token);
  expect(set.data.setLowBalanceAlert).toEqual({ id: customer.id, lowBalanceThresholdSeconds: 500 });

  const first: any = await server.graphql(reserve, { input: { estimatedSeconds: 600, endpoint: "a" } }, customer.token);
  expect(await alertJobs(customer.id)).toBe(1);
  await server.graphql(reserve, { input: { estimatedSeconds: 100, endpoint: "a" } }, customer.token);
  expect(await alertJobs(customer.id)).toBe(1);

  await server.graphql(release, { id: first.data.reserveCredits.reservation.id }, customer.token);
  await server.graphql(reserve, { input: { estimatedSeconds: 600, endpoint: "a" } }, customer.token);
  expect(await alertJobs(customer.id)).toBe(2);

  await server.services.outboxWorker.runOnce();
  const mails = smtp.received.filter((mail) => mail.to.includes(customer.email));
  expect(mails).toHaveLength(2);
  expect(mails.every((mail) => mail.raw.includes("Subject: Your Splice processing time is running low"))).toBe(true);
  const bodies = mails.map((mail) => /Your processing time fell to (.+?), below the (.+?) you asked/.exec(mail.raw.replace(/=\r?\n/g, ""))?.slice(1));
  // 400 s left after the first crossing, 300 s after the second; the threshold is 500 s.
  expect(bodies.sort()).toEqual([["5 min", "8 min 20 s"], ["6 min 40 s", "8 min 20 s"]]);
});

it("sends nothing for a threshold set above the current balance until the balance has risen above it", async () => {
  const customer = await server.createCustomer({ initialSeconds: 300 });
  await server.graphql(setAlert, { input: { thresholdSeconds: 500 } }, customer.token);
  await server.graphql(reserve, { input: { estimatedSeconds: 100, endpoint: "a" } }, customer.token);
  expect(await alertJobs(customer.id)).toBe(0);
  await server.graphql(`mutation($id: ID!) { adjustCredits(input: { customerId: $id, deltaSeconds: 1000, note: "top-up" }) { id } }`, { id: customer.id }, server.staffToken);
  await server.graphql(reserve, { input: { estimatedSeconds: 900, endpoint: "a" } }, customer.token);
  expect(await alertJobs(customer.id)).toBe(1);
});

it("is off with a null threshold, is the owner's or staff's to set, and refuses a threshold beyond the limit", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  const stranger = await server.createCustomer({ initialSeconds: 0 });
  await server.graphql(setAlert, { input: { customerId: customer.id, thresholdSeconds: 900 } }, server.staffToken);
  const off: any = await server.graphql(setAlert, { input: { thresholdSeconds: null } }, customer.token);
  expect(off.data.setLowBalanceAlert.lowBalanceThresholdSeconds).toBeNull();
  await server.graphql(reserve, { input: { estimatedSeconds: 950, endpoint: "a" } }, customer.token);
  expect(await alertJobs(customer.id)).toBe(0);
  const foreign = await server.graphql(setAlert, { input: { customerId: customer.id, thresholdSeconds: 10 } }, stranger.token);
  expect(foreign.errors?.map((error) => error.extensions?.code)).toEqual(["FORBIDDEN"]);
  for (const thresholdSeconds of [0, server.config.credits.balanceMaxSeconds + 1]) {
    const refused = await server.graphql(setAlert, { input: { thresholdSeconds } }, customer.token);
    expect(refused.errors?.map((error) => error.extensions?.code)).toEqual(["BAD_USER_INPUT"]);
  }
});

it("sends at most LOW_BALANCE_EMAILS_PER_DAY (3) a day, however often the balance dips", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  await server.graphql(setAlert, { input: { thresholdSeconds: 500 } }, customer.token);
  for (let dip = 0; dip < 5; dip += 1) {
    const reserved: any = await server.graphql(reserve, { input: { estimatedSeconds: 600, endpoint: "loop" } }, customer.token);
    await server.graphql(release, { id: reserved.data.reserveCredits.reservation.id }, customer.token);
  }
  expect(await alertJobs(customer.id)).toBe(5);
  await server.services.outboxWorker.runOnce();
  expect(smtp.received.filter((mail) => mail.to.includes(customer.email))).toHaveLength(3);
});

it("emails exactly once when 10 reservations race across the threshold", async () => {
  const customer = await server.createCustomer({ initialSeconds: 1000 });
  await server.graphql(setAlert, { input: { thresholdSeconds: 500 } }, customer.token);
  const answers = await Promise.all(
    Array.from({ length: 10 }, () => server.graphql(reserve, { input: { estimatedSeconds: 100, endpoint: "race" } }, customer.token)),
  );
  expect(answers.filter((answer) => answer.data?.reserveCredits).length).toBe(10);
  expect(await alertJobs(customer.id)).toBe(1);
});
