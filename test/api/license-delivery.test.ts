// License keys reach customers by email through the outbox, over a real SMTP server, also
// when the first attempts fail and when several instances work the outbox at once.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink";
import { drainOutbox, startTestServer, type TestServer } from "../support/test-server";

const issueMutation = `mutation Issue($id: ID!) { issueLicense(input: { customerId: $id }) { created license { id key } } }`;
const resendMutation = `mutation Resend($id: ID) { resendLicense(input: { customerId: $id }) { key } }`;

let smtp: SmtpSink;
let server: TestServer;
let secondInstance: TestServer;

beforeAll(async () => {
  smtp = await startSmtpSink();
  const environment = { SMTP_URL: smtp.url, OUTBOX_BACKOFF_BASE_MS: "10", OUTBOX_BACKOFF_MAX_MS: "40", OUTBOX_MAX_ATTEMPTS: "4" };
  server = await startTestServer({ environment });
  secondInstance = await startTestServer({ databaseUrl: server.databaseUrl, environment });
});
afterAll(async () => {
  await secondInstance.close();
  await server.close();
  await smtp.close();
});
beforeEach(() => {
  smtp.received.length = 0;
});

async function issue(customerId: string): Promise<{ id: string; key: string }> {
  const result: any = await server.graphql(issueMutation, { id: customerId }, server.staffToken);
  return result.data.issueLicense.license;
}

it("mails a newly issued key to the customer", async () => {
  const customer = await server.createCustomer({ initialSeconds: 0 });
  const license = await issue(customer.id);
  await drainOutbox(server);
  const mails = await smtp.waitFor(1);
  expect(mails).toHaveLength(1);
  expect(mails[0]!.to).toEqual([customer.email]);
  expect(mails[0]!.raw).toContain(license.key);
  expect(mails[0]!.raw).toMatch(/Subject: Your Splice license key/);
});

it("retries a failed delivery with backoff until it arrives, recording every attempt", async () => {
  const customer = await server.createCustomer({ initialSeconds: 0 });
  smtp.failNext(2);
  const license = await issue(customer.id);
  await drainOutbox(server);
  const mails = await smtp.waitFor(1);
  expect(mails).toHaveLength(1);
  expect(mails[0]!.raw).toContain(license.key);
  const attempts = await server.sql.query(
    `SELECT a.attempt, a.succeeded, a.error FROM outbox_attempt a JOIN outbox_job j ON j.id = a.job_id
     WHERE j.customer_id = $1 ORDER BY a.attempt`,
    [customer.id],
  );
  expect(attempts.rows.map((row) => [row.attempt, row.succeeded])).toEqual([[1, false], [2, false], [3, true]]);
  expect(attempts.rows[0].error).toMatch(/451|busy/);
  const job = await server.sql.query("SELECT status, attempts FROM outbox_job WHERE customer_id = $1", [customer.id]);
  expect(job.rows).toEqual([{ status: "DONE", attempts: 3 }]);
});

it("gives up after the configured attempts and keeps the job as DEAD with its error", async () => {
  const customer = await server.createCustomer({ initialSeconds: 0 });
  smtp.failNext(10);
  await issue(customer.id);
  await drainOutbox(server);
  smtp.failNext(0);
  const job = await server.sql.query("SELECT status, attempts, last_error FROM outbox_job WHERE customer_id = $1", [customer.id]);
  expect(job.rows[0]).toMatchObject({ status: "DEAD", attempts: 4 });
  expect(job.rows[0].last_error).toMatch(/451|busy/);
  expect(smtp.received).toHaveLength(0);
});

it("resends on request: owner or staff, a new email each time", async () => {
  const customer = await server.createCustomer({ initialSeconds: 0 });
  const license = await issue(customer.id);
  const byOwner: any = await server.graphql(resendMutation, {}, customer.token);
  expect(byOwner.data.resendLicense.key).toBe(license.key);
  const byStaff: any = await server.graphql(resendMutation, { id: customer.id }, server.staffToken);
  expect(byStaff.data.resendLicense.key).toBe(license.key);
  await drainOutbox(server);
  const mails = await smtp.waitFor(3);
  expect(mails.filter((mail) => mail.to[0] === customer.email)).toHaveLength(3);
});

it("limits resends per customer and hour", async () => {
  const limited = await startTestServer({ environment: { RESEND_LICENSE_PER_HOUR_MAX: "2" } });
  try {
    const customer = await limited.createCustomer({ initialSeconds: 0 });
    for (let call = 0; call < 2; call += 1) expect((await limited.graphql(resendMutation, {}, customer.token)).errors).toBeUndefined();
    const refused = await limited.graphql(resendMutation, {}, customer.token);
    expect(refused.status).toBe(429);
    expect(refused.errors![0]!.extensions).toMatchObject({ code: "TOO_MANY_REQUESTS" });
    const retryAfterSeconds = refused.errors![0]!.extensions!.retryAfterSeconds as number;
    expect(retryAfterSeconds).toBeGreaterThan(0);
    expect(refused.headers.get("retry-after")).toBe(String(retryAfterSeconds));
  } finally {
    await limited.close();
  }
});

it("issues a license first when resending for a customer who has none", async () => {
  const customer = await server.createCustomer({ initialSeconds: 0 });
  const resent: any = await server.graphql(resendMutation, {}, customer.token);
  expect(resent.data.resendLicense.key).toMatch(/^SPLICE-/);
  await drainOutbox(server);
  const mails = await smtp.waitFor(1);
  expect(mails).toHaveLength(1);
  expect(mails[0]!.raw).toContain(resent.data.resendLicense.key);
});

it("sends each queued email exactly once when two instances work the outbox at once", async () => {
  const customers = await Promise.all(Array.from({ length: 8 }, () => server.createCustomer({ initialSeconds: 0 })));
  for (const customer of customers) await issue(customer.id);
  await Promise.all([
    server.services.outboxWorker.runOnce(),
    secondInstance.services.outboxWorker.runOnce(),
    server.services.outboxWorker.runOnce(),
    secondInstance.services.outboxWorker.runOnce(),
  ]);
  await drainOutbox(server);
  const mails = await smtp.waitFor(8);
  expect(mails).toHaveLength(8);
  expect(new Set(mails.map((mail) => mail.to[0]))).toEqual(new Set(customers.map((customer) => customer.email)));
});

it("takes over a job whose worker died mid-send once its lease runs out, and fences the dead worker out", async () => {
  await drainOutbox(server);
  const customer = await server.createCustomer({ initialSeconds: 0 });
  const license = await issue(customer.id);
  // A worker claims the job, then dies before finishing it.
  const [abandoned] = await server.services.outbox.claimDue(server.database, server.clock.now(), 10, 60);
  expect(abandoned?.customerId).toBe(customer.id);
  expect(await secondInstance.services.outboxWorker.runOnce()).toBe(0);
  secondInstance.clock.advanceSeconds(61);
  expect(await secondInstance.services.outboxWorker.runOnce()).toBe(1);
  const mails = await smtp.waitFor(1);
  expect(mails[0]!.raw).toContain(license.key);
  // The dead worker's late report changes nothing: its attempt number no longer matches.
  await server.services.outbox.failed(server.database, abandoned!, "late", new Date(), new Date(), undefined);
  const job = await server.sql.query("SELECT status, attempts FROM outbox_job WHERE id = $1", [abandoned!.id]);
  expect(job.rows[0]).toEqual({ status: "DONE", attempts: 2 });
  const attempts = await server.sql.query("SELECT attempt, succeeded FROM outbox_attempt WHERE job_id = $1", [abandoned!.id]);
  expect(attempts.rows).toEqual([{ attempt: 2, succeeded: true }]);
});

it("the background worker delivers without being asked", async () => {
  const customer = await server.createCustomer({ initialSeconds: 0 });
  server.services.outboxWorker.start();
  try {
    const license = await issue(customer.id);
    const mails = await smtp.waitFor(1);
    expect(mails[0]!.raw).toContain(license.key);
  } finally {
    await server.services.outboxWorker.stop();
  }
});

describe("without SMTP_URL", () => {
  it("writes each email to the mail folder", async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "splice-mail-"));
    const local = await startTestServer({ environment: { MAIL_DIRECTORY: directory } });
    try {
      const customer = await local.createCustomer({ initialSeconds: 0 });
      const result: any = await local.graphql(issueMutation, { id: customer.id }, local.staffToken);
      await drainOutbox(local);
      const files = fs.readdirSync(directory).filter((name) => name.endsWith(".eml"));
      expect(files).toHaveLength(1);
      const message = fs.readFileSync(path.join(directory, files[0]!), "utf8");
      expect(message).toContain(result.data.issueLicense.license.key);
      expect(message).toContain(`To: ${customer.email}`);
    } finally {
      await local.close();
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});
