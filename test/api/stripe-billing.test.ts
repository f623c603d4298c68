// Stripe webhooks on a real database, with signed payloads shaped like Stripe's events for the
// SDK's pinned API version, the real SDK against a local fake of Stripe's API, and real SMTP.
import { expectConsistentLedger } from "../support/ledger-invariants";
import { startFakeStripe, signedDelivery, stripeEvent, stripeId, type FakeStripe } from "../support/fake-stripe";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink";
import { runAudit } from "../../src/ops/audit";
import { fromStripeFixture } from "../support/stripe-fixtures";
import { drainOutbox, errorCodes, startTestServer, uniqueEmail, type TestServer } from "../support/test-server";

const webhookSecret = "whsec_test_secret_for_billing";
const hour = 3600;
const plans = {
  price_pack10: { type: "hours", hours: 10 },
  price_pro: { type: "subscription", tier: "PRO", monthlyHours: 50 },
  price_studio: { type: "subscription", tier: "STUDIO", monthlyHours: 150 },
};

let stripe: FakeStripe;
let smtp: SmtpSink;
let server: TestServer;

beforeAll(async () => {
  stripe = await startFakeStripe();
  smtp = await startSmtpSink();
  server = await startTestServer({
    environment: {
      STRIPE_SECRET_KEY: "sk_test_fake",
      STRIPE_WEBHOOK_SECRET: webhookSecret,
      STRIPE_API_HOST: "127.0.0.1",
      STRIPE_API_PORT: String(stripe.port),
      STRIPE_API_PROTOCOL: "http",
      STRIPE_PLANS: JSON.stringify(plans),
      SMTP_URL: smtp.url,
      OUTBOX_BACKOFF_BASE_MS: "10",
      OUTBOX_BACKOFF_MAX_MS: "40",
      DASHBOARD_ORIGINS: "https://dashboard.splice.test",
    },
  });
});
afterAll(async () => {
  await server.close();
  await smtp.close();
  await stripe.close();
});

async function deliver(event: object, secret = webhookSecret, target = server): Promise<{ status: number; body: any }> {
  const { body, signature } = signedDelivery(event, secret);
  const response = await fetch(`${target.baseUrl}/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json", "stripe-signature": signature },
    body,
  });
  return { status: response.status, body: await response.json() };
}

function checkoutSession(options: { customer: string | null; email?: string; mode?: "payment" | "subscription"; paid?: boolean; paymentIntent?: string; subscription?: string; id?: string }) {
  const example = fromStripeFixture("checkout.session", {});
  return fromStripeFixture("checkout.session", {
    id: options.id ?? stripeId("cs_test"),
    customer: options.customer,
    customer_details: { ...(example.customer_details as object), email: options.email ?? null },
    customer_email: null,
    mode: options.mode ?? "payment",
    payment_status: options.paid === false ? "unpaid" : "paid",
    payment_intent: options.mode === "subscription" ? null : options.paymentIntent ?? stripeId("pi"),
    subscription: options.subscription ?? null,
    status: "complete",
    metadata: {},
  });
}

const month = 30 * 24 * 3600;

/** An invoice line shaped like Stripe's (fixtures3.json `invoice.lines`), for a price and a period. */
function invoiceLine(price: string, options: { proration?: boolean; periodStart?: number; amount?: number } = {}) {
  const start = options.periodStart ?? Math.floor(Date.now() / 1000);
  return {
    id: stripeId("il"),
    object: "line_item",
    amount: options.amount ?? 5000,
    currency: "usd",
    period: { start, end: start + month },
    parent: {
      type: "subscription_item_details",
      invoice_item_details: null,
      subscription_item_details: { invoice_item: null, proration: options.proration ?? false, proration_details: { credited_items: null }, subscription: "sub", subscription_item: "si" },
    },
    pricing: { type: "price_details", price_details: { price, product: "prod_1" }, unit_amount_decimal: null },
    quantity: 1,
  };
}

function invoice(options: { customer: string; subscription: string; price: string; id?: string; lines?: ReturnType<typeof invoiceLine>[]; amountPaid?: number }) {
  const lines = options.lines ?? [invoiceLine(options.price)];
  return fromStripeFixture("invoice", {
    id: options.id ?? stripeId("in"),
    customer: options.customer,
    customer_email: null,
    status: "paid",
    billing_reason: "subscription_cycle",
    amount_paid: options.amountPaid ?? lines.reduce((sum, line) => sum + line.amount, 0),
    parent: { type: "subscription_details", quote_details: null, subscription_details: { subscription: options.subscription, metadata: {} } },
    lines: { object: "list", has_more: false, url: "/v1/invoices/lines", data: lines },
  });
}

const subscription = (id: string, customer: string, price: string, status = "active") =>
  fromStripeFixture("subscription", {
    id,
    customer,
    status,
    items: { object: "list", has_more: false, data: [{ id: stripeId("si"), object: "subscription_item", price: { id: price, object: "price" }, quantity: 1 }] },
  });

async function customerByStripeId(stripeCustomerId: string) {
  const rows = await server.sql.query("SELECT c.id, c.email, c.tier, b.seconds_remaining FROM customer c JOIN credit_balance b ON b.customer_id = c.id WHERE c.stripe_customer_id = $1", [stripeCustomerId]);
  return rows.rows;
}

async function buyHourPack(options: { paymentIntent?: string } = {}) {
  const stripeCustomer = stripeId("cus");
  const email = uniqueEmail("buyer");
  const session = checkoutSession({ customer: stripeCustomer, email, paymentIntent: options.paymentIntent });
  stripe.lineItems.set(session.id, "price_pack10");
  const result = await deliver(stripeEvent("checkout.session.completed", session));
  expect(result.status).toBe(200);
  const [customer] = await customerByStripeId(stripeCustomer);
  return { stripeCustomer, email, session, customer };
}

describe("a guest checkout (no Stripe customer)", () => {
  it("finds the buyer by email: hours granted and a license mailed; a later Stripe customer links to the same account", async () => {
    smtp.received.length = 0;
    const email = uniqueEmail("guest");
    const session = checkoutSession({ customer: null, email });
    stripe.lineItems.set(session.id, "price_pack10");
    const event = stripeEvent("checkout.session.completed", session);
    expect((await deliver(event)).status).toBe(200);
    const stored = await server.sql.query("SELECT status FROM stripe_event WHERE id = $1", [event.id]);
    expect(stored.rows).toEqual([{ status: "PROCESSED" }]);
    const buyer = await server.sql.query("SELECT c.id, c.stripe_customer_id, b.seconds_remaining FROM customer c JOIN credit_balance b ON b.customer_id = c.id WHERE c.email = $1", [email]);
    expect(buyer.rows).toEqual([{ id: expect.any(String), stripe_customer_id: null, seconds_remaining: 10 * hour }]);
    const license = await server.sql.query("SELECT key FROM license WHERE customer_id = $1", [buyer.rows[0].id]);
    expect(license.rows).toHaveLength(1);
    const jobs = await server.sql.query("SELECT kind FROM outbox_job WHERE customer_id = $1 ORDER BY kind", [buyer.rows[0].id]);
    expect(jobs.rows.map((row) => row.kind)).not.toContain("stripe_customer_metadata");
    await drainOutbox(server);
    const mails = await smtp.waitFor(1);
    expect(mails.find((mail) => mail.to[0] === email)?.raw).toContain(license.rows[0].key);

    const stripeCustomer = stripeId("cus");
    const later = checkoutSession({ customer: stripeCustomer, email });
    stripe.lineItems.set(later.id, "price_pack10");
    expect((await deliver(stripeEvent("checkout.session.completed", later))).status).toBe(200);
    expect(await customerByStripeId(stripeCustomer)).toEqual([expect.objectContaining({ id: buyer.rows[0].id, seconds_remaining: 20 * hour })]);
    await expectConsistentLedger(server.sql, buyer.rows[0].id);
  });

  it("without a customer or an email, the event fails and stays FAILED for Stripe to retry", async () => {
    const session = checkoutSession({ customer: null });
    stripe.lineItems.set(session.id, "price_pack10");
    const event = stripeEvent("checkout.session.completed", session);
    expect((await deliver(event)).status).toBe(422);
    const stored = await server.sql.query("SELECT status, last_error FROM stripe_event WHERE id = $1", [event.id]);
    expect(stored.rows).toEqual([{ status: "FAILED", last_error: expect.stringContaining("neither a customer nor a usable email") }]);
  });
});

describe("checkout.session.completed for a new buyer", () => {
  it("yields one customer with the pack's hours and one license, mailed and written to Stripe", async () => {
    smtp.received.length = 0;
    const { stripeCustomer, email, customer } = await buyHourPack();
    expect(customer).toMatchObject({ email, tier: "STARTER", seconds_remaining: 10 * hour });
    const ledger = await server.sql.query("SELECT kind, delta_seconds, actor FROM ledger_entry WHERE customer_id = $1", [customer.id]);
    expect(ledger.rows).toEqual([{ kind: "GRANT", delta_seconds: 36000, actor: expect.stringMatching(/^stripe:evt_/) }]);
    const license = await server.sql.query("SELECT key FROM license WHERE customer_id = $1", [customer.id]);
    expect(license.rows).toHaveLength(1);
    await drainOutbox(server);
    const mails = await smtp.waitFor(1);
    expect(mails.find((mail) => mail.to[0] === email)?.raw).toContain(license.rows[0].key);
    expect(stripe.customerMetadata.get(stripeCustomer)).toEqual({ splice_customer_id: customer.id, splice_license_key: license.rows[0].key });
  });

  it("has exactly one effect when the same event arrives 10 times at once", async () => {
    const stripeCustomer = stripeId("cus");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail() });
    stripe.lineItems.set(session.id, "price_pack10");
    const event = stripeEvent("checkout.session.completed", session);
    const results = await Promise.all(Array.from({ length: 10 }, () => deliver(event)));
    expect(results.map((result) => result.status)).toEqual(Array(10).fill(200));
    const customers = await customerByStripeId(stripeCustomer);
    expect(customers).toHaveLength(1);
    expect(customers[0].seconds_remaining).toBe(10 * hour);
    const licenses = await server.sql.query("SELECT count(*)::int AS n FROM license WHERE customer_id = $1", [customers[0].id]);
    expect(licenses.rows[0].n).toBe(1);
    const stored = await server.sql.query("SELECT status, attempts FROM stripe_event WHERE id = $1", [event.id]);
    expect(stored.rows).toEqual([{ status: "PROCESSED", attempts: 1 }]);
    await expectConsistentLedger(server.sql, customers[0].id);
  });

  it("grants once when two different events fulfil the same session", async () => {
    const stripeCustomer = stripeId("cus");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail() });
    stripe.lineItems.set(session.id, "price_pack10");
    const results = await Promise.all([
      deliver(stripeEvent("checkout.session.completed", session)),
      deliver(stripeEvent("checkout.session.async_payment_succeeded", session)),
      deliver(stripeEvent("checkout.session.completed", session)),
    ]);
    expect(results.map((result) => result.status)).toEqual([200, 200, 200]);
    const [customer] = await customerByStripeId(stripeCustomer);
    expect(customer.seconds_remaining).toBe(10 * hour);
  });

  it("waits for async_payment_succeeded when the session is not paid yet", async () => {
    const stripeCustomer = stripeId("cus");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail(), paid: false });
    stripe.lineItems.set(session.id, "price_pack10");
    await deliver(stripeEvent("checkout.session.completed", session));
    expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(0);
    await deliver(stripeEvent("checkout.session.async_payment_succeeded", { ...session, payment_status: "paid" }));
    expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(10 * hour);
  });

  it("links an existing customer with the same email instead of creating another", async () => {
    const existing = await server.createCustomer({ initialSeconds: 100 });
    const stripeCustomer = stripeId("cus");
    const session = checkoutSession({ customer: stripeCustomer, email: existing.email.toUpperCase() });
    stripe.lineItems.set(session.id, "price_pack10");
    await deliver(stripeEvent("checkout.session.completed", session));
    const linked = await customerByStripeId(stripeCustomer);
    expect(linked).toEqual([expect.objectContaining({ id: existing.id, seconds_remaining: 100 + 10 * hour })]);
  });
});

describe("subscriptions", () => {
  it("set the tier at checkout and grant the tier's hours once per paid invoice", async () => {
    const stripeCustomer = stripeId("cus");
    const subscriptionId = stripeId("sub");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail(), mode: "subscription", subscription: subscriptionId });
    stripe.lineItems.set(session.id, "price_pro");
    await deliver(stripeEvent("checkout.session.completed", session));
    const [customer] = await customerByStripeId(stripeCustomer);
    expect(customer).toMatchObject({ tier: "PRO", seconds_remaining: 0 });

    const firstInvoice = invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro" });
    stripe.invoicePayments.set(firstInvoice.id, [stripeId("pi")]);
    await deliver(stripeEvent("invoice.paid", firstInvoice));
    await deliver(stripeEvent("invoice.paid", firstInvoice));
    expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(50 * hour);
    await deliver(stripeEvent("invoice.paid", invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro" })));
    expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(100 * hour);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("follow tier changes (device seats too), ignore older events, and keep hours on cancellation", async () => {
    const stripeCustomer = stripeId("cus");
    const subscriptionId = stripeId("sub");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail(), mode: "subscription", subscription: subscriptionId });
    stripe.lineItems.set(session.id, "price_pro");
    await deliver(stripeEvent("checkout.session.completed", session));
    const paid = invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro" });
    await deliver(stripeEvent("invoice.paid", paid));
    const now = Math.floor(Date.now() / 1000);
    const upgrade = stripeEvent("customer.subscription.updated", subscription(subscriptionId, stripeCustomer, "price_studio"), now + 10);
    const stale = stripeEvent("customer.subscription.updated", subscription(subscriptionId, stripeCustomer, "price_pro"), now + 5);
    expect((await deliver(upgrade)).body.status).toBe("PROCESSED");
    expect((await deliver(stale)).body.status).toBe("IGNORED");
    const [customer] = await customerByStripeId(stripeCustomer);
    expect(customer.tier).toBe("STUDIO");
    const seats: any = await server.graphql(`query($id: ID!) { customer(id: $id) { license { maxDevices } } }`, { id: customer.id }, server.staffToken);
    expect(seats.data.customer.license.maxDevices).toBe(5);
    await deliver(stripeEvent("customer.subscription.deleted", subscription(subscriptionId, stripeCustomer, "price_studio", "canceled"), now + 20));
    expect((await customerByStripeId(stripeCustomer))[0]).toMatchObject({ tier: "STARTER", seconds_remaining: 50 * hour });
  });
});

describe("subscription invoices grant what they bill for the new period", () => {
  async function subscriber() {
    const stripeCustomer = stripeId("cus");
    const subscriptionId = stripeId("sub");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail(), mode: "subscription", subscription: subscriptionId });
    stripe.lineItems.set(session.id, "price_pro");
    await deliver(stripeEvent("checkout.session.completed", session));
    return { stripeCustomer, subscriptionId };
  }

  it("a renewal after an upgrade grants the new plan's hours, whatever proration lines come first", async () => {
    const { stripeCustomer, subscriptionId } = await subscriber();
    const now = Math.floor(Date.now() / 1000);
    const lines = [
      invoiceLine("price_pro", { proration: true, amount: -2500, periodStart: now - month / 2 }),
      invoiceLine("price_studio", { proration: true, amount: 7500, periodStart: now - month / 2 }),
      invoiceLine("price_studio", { periodStart: now }),
    ];
    const paid = stripeEvent("invoice.paid", invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro", lines }));
    expect((await deliver(paid)).body.status).toBe("PROCESSED");
    expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(150 * hour);
  });

  it("a proration-only invoice grants nothing", async () => {
    const { stripeCustomer, subscriptionId } = await subscriber();
    const now = Math.floor(Date.now() / 1000);
    const lines = [invoiceLine("price_pro", { proration: true, amount: -2500, periodStart: now }), invoiceLine("price_studio", { proration: true, amount: 7500, periodStart: now })];
    const paid = stripeEvent("invoice.paid", invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro", lines }));
    expect((await deliver(paid)).body.status).toBe("IGNORED");
    expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(0);
  });

  it("a $0 (trial) invoice grants nothing unless ZERO_AMOUNT_INVOICES_GRANT is set", async () => {
    const { stripeCustomer, subscriptionId } = await subscriber();
    const trial = stripeEvent("invoice.paid", invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro", amountPaid: 0 }));
    expect((await deliver(trial)).body.status).toBe("IGNORED");
    expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(0);

    const granting = await startTestServer({
      databaseUrl: server.databaseUrl,
      environment: { STRIPE_SECRET_KEY: "sk_test_fake", STRIPE_WEBHOOK_SECRET: webhookSecret, STRIPE_PLANS: JSON.stringify(plans), STRIPE_API_HOST: "127.0.0.1", STRIPE_API_PORT: String(stripe.port), STRIPE_API_PROTOCOL: "http", ZERO_AMOUNT_INVOICES_GRANT: "true" },
    });
    try {
      const secondTrial = stripeEvent("invoice.paid", invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro", amountPaid: 0 }));
      expect(await deliver(secondTrial, webhookSecret, granting)).toMatchObject({ status: 200, body: { status: "PROCESSED" } });
      expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(50 * hour);
    } finally {
      await granting.close();
    }
  });
});

describe("one ordering rule for the tier: a cancellation is final", () => {
  async function subscribed(price: "price_pro" | "price_studio", createdSeconds: number) {
    const stripeCustomer = stripeId("cus");
    const subscriptionId = stripeId("sub");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail(), mode: "subscription", subscription: subscriptionId });
    stripe.lineItems.set(session.id, price);
    const checkout = stripeEvent("checkout.session.completed", session, createdSeconds);
    return { stripeCustomer, subscriptionId, checkout };
  }

  it("a checkout.session.completed delivered after the subscription was deleted does not restore its tier", async () => {
    const now = Math.floor(Date.now() / 1000);
    const { stripeCustomer, subscriptionId, checkout } = await subscribed("price_pro", now);
    expect((await deliver(stripeEvent("customer.subscription.deleted", subscription(subscriptionId, stripeCustomer, "price_pro", "canceled"), now + 60))).status).toBe(200);
    expect((await deliver(checkout)).body.status).toBe("PROCESSED");
    const [customer] = await customerByStripeId(stripeCustomer);
    expect(customer.tier).toBe("STARTER");
    // The buyer still gets the license the checkout brings.
    expect((await server.sql.query("SELECT count(*)::int AS n FROM license WHERE customer_id = $1", [customer.id])).rows[0].n).toBe(1);
  });

  it("an update stamped in the same second as the deletion, delivered after it, is ignored", async () => {
    const now = Math.floor(Date.now() / 1000);
    const { stripeCustomer, subscriptionId, checkout } = await subscribed("price_studio", now);
    await deliver(checkout);
    expect((await customerByStripeId(stripeCustomer))[0].tier).toBe("STUDIO");
    await deliver(stripeEvent("customer.subscription.deleted", subscription(subscriptionId, stripeCustomer, "price_studio", "canceled"), now + 30));
    const sameSecond = await deliver(stripeEvent("customer.subscription.updated", subscription(subscriptionId, stripeCustomer, "price_studio"), now + 30));
    expect(sameSecond.body.status).toBe("IGNORED");
    expect((await customerByStripeId(stripeCustomer))[0].tier).toBe("STARTER");
  });

  it("a new subscription brings a paid tier back after a cancellation", async () => {
    const now = Math.floor(Date.now() / 1000);
    const { stripeCustomer, subscriptionId, checkout } = await subscribed("price_pro", now);
    await deliver(checkout);
    await deliver(stripeEvent("customer.subscription.deleted", subscription(subscriptionId, stripeCustomer, "price_pro", "canceled"), now + 10));
    const renewed = stripeId("sub");
    expect((await deliver(stripeEvent("customer.subscription.updated", subscription(renewed, stripeCustomer, "price_pro"), now + 20))).body.status).toBe("PROCESSED");
    expect((await customerByStripeId(stripeCustomer))[0].tier).toBe("PRO");
  });
});

it("a downgrade releases the newest devices beyond the new tier's seats", async () => {
  const stripeCustomer = stripeId("cus");
  const subscriptionId = stripeId("sub");
  const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail(), mode: "subscription", subscription: subscriptionId });
  stripe.lineItems.set(session.id, "price_studio");
  await deliver(stripeEvent("checkout.session.completed", session));
  const [customer] = await customerByStripeId(stripeCustomer);
  const key = (await server.sql.query("SELECT key FROM license WHERE customer_id = $1", [customer.id])).rows[0].key;
  const tokens: string[] = [];
  for (let index = 0; index < 5; index += 1) {
    const activated: any = await server.graphql(`mutation($key: String!, $fp: String!) { activateLicense(input: { key: $key, device: { fingerprint: $fp } }) { deviceToken } }`, { key, fp: `seat-${index}` });
    tokens.push(activated.data.activateLicense.deviceToken);
  }
  await deliver(stripeEvent("customer.subscription.updated", subscription(subscriptionId, stripeCustomer, "price_pro"), Math.floor(Date.now() / 1000) + 30));
  const seated = await server.sql.query("SELECT fingerprint FROM device d JOIN license l ON l.id = d.license_id WHERE l.customer_id = $1 AND d.deactivated_at IS NULL ORDER BY fingerprint", [customer.id]);
  expect(seated.rows.map((row) => row.fingerprint)).toEqual(["seat-0", "seat-1", "seat-2"]);
  expect(errorCodes(await server.graphql(`{ me { id } }`, {}, tokens[4]))).toEqual(["UNAUTHENTICATED"]);
  expect(((await server.graphql(`{ me { id } }`, {}, tokens[0])) as any).data.me.id).toBe(customer.id);
});

describe("refunds and disputes in any delivery order", () => {
  const permutations = <T,>(items: T[]): T[][] =>
    items.length <= 1 ? [items] : items.flatMap((item, index) => permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]));

  /** Purchase, half refund, dispute opened, dispute won: delivered in `order`, Stripe's `created` in the natural order. */
  async function deliverInOrder(order: number[]) {
    const now = Math.floor(Date.now() / 1000);
    const stripeCustomer = stripeId("cus");
    const paymentIntent = stripeId("pi");
    const chargeId = stripeId("ch");
    const disputeId = stripeId("dp");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail("order"), paymentIntent });
    stripe.lineItems.set(session.id, "price_pack10");
    const events = [
      stripeEvent("checkout.session.completed", session, now),
      stripeEvent("charge.refunded", fromStripeFixture("charge", { id: chargeId, payment_intent: paymentIntent, amount: 1000, amount_refunded: 500, refunded: false, customer: stripeCustomer }), now + 1),
      stripeEvent("charge.dispute.created", fromStripeFixture("dispute", { id: disputeId, charge: chargeId, payment_intent: paymentIntent, status: "needs_response" }), now + 2),
      stripeEvent("charge.dispute.closed", fromStripeFixture("dispute", { id: disputeId, charge: chargeId, payment_intent: paymentIntent, status: "won" }), now + 3),
    ];
    for (const index of order) await deliver(events[index]!);
    const [customer] = await customerByStripeId(stripeCustomer);
    const ledger = await server.sql.query("SELECT kind, delta_seconds FROM ledger_entry WHERE customer_id = $1 ORDER BY kind", [customer.id]);
    const license = await server.sql.query("SELECT status FROM license WHERE customer_id = $1", [customer.id]);
    const statuses = await server.sql.query("SELECT status FROM stripe_event WHERE id = ANY($1::text[]) ORDER BY status", [events.map((event) => event.id)]);
    await expectConsistentLedger(server.sql, customer.id);
    return {
      secondsRemaining: customer.seconds_remaining,
      ledger: ledger.rows,
      licenseStatus: license.rows[0]?.status,
      eventStatuses: statuses.rows.map((row) => row.status),
    };
  }

  it("every order of {purchase, refund, dispute created, dispute closed} ends as the natural order does", async () => {
    const natural = await deliverInOrder([0, 1, 2, 3]);
    expect(natural).toEqual({
      secondsRemaining: 5 * hour,
      ledger: [
        { kind: "GRANT", delta_seconds: 10 * hour },
        { kind: "REFUND", delta_seconds: -5 * hour },
      ],
      licenseStatus: "ACTIVE",
      eventStatuses: ["PROCESSED", "PROCESSED", "PROCESSED", "PROCESSED"],
    });
    for (const order of permutations([0, 1, 2, 3])) {
      expect({ order, final: await deliverInOrder(order) }).toEqual({ order, final: natural });
    }
  });

  it("the audit shows a refund left unapplied although its purchase was applied", async () => {
    const refundCheck = async () =>
      (await runAudit(server.database, server.config)).find((check) => check.name === "every refund of a purchase that was applied is applied")!.violations;
    expect(await refundCheck()).toEqual([]);
    const paymentIntent = stripeId("pi");
    await buyHourPack({ paymentIntent });
    const lost = stripeEvent("charge.refunded", fromStripeFixture("charge", { id: stripeId("ch"), payment_intent: paymentIntent, amount: 1000, amount_refunded: 1000, refunded: true }));
    // A refund lost the old way: recorded, not applied, although its purchase was.
    await server.sql.query(
      "INSERT INTO stripe_event (id, type, stripe_created, status, attempts, payload) VALUES ($1, 'charge.refunded', now(), 'FAILED', 1, $2)",
      [lost.id, JSON.stringify(lost)],
    );
    expect(await refundCheck()).toEqual([expect.objectContaining({ event_id: lost.id, status: "FAILED" })]);
    await deliver(lost);
    expect(await refundCheck()).toEqual([]);
  });

  it("a dispute that arrives before its purchase deactivates the license once the purchase arrives", async () => {
    const now = Math.floor(Date.now() / 1000);
    const stripeCustomer = stripeId("cus");
    const paymentIntent = stripeId("pi");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail("disputed"), paymentIntent });
    stripe.lineItems.set(session.id, "price_pack10");
    const early = await deliver(stripeEvent("charge.dispute.created", fromStripeFixture("dispute", { id: stripeId("dp"), charge: stripeId("ch"), payment_intent: paymentIntent, status: "needs_response" }), now + 5));
    expect(early.status).toBe(422);
    await deliver(stripeEvent("checkout.session.completed", session, now));
    const [customer] = await customerByStripeId(stripeCustomer);
    const license = await server.sql.query("SELECT status FROM license WHERE customer_id = $1", [customer.id]);
    expect(license.rows[0].status).toBe("DEACTIVATED");
  });
});

describe("grants from payments", () => {
  const grantsOf = async (customerId: string) => {
    const result: any = await server.graphql(
      `query($id: ID!) { customer(id: $id) { grants(includeSpent: true) { edges { node { source grantedSeconds remainingSeconds heldSeconds expiresAt note } } } } }`,
      { id: customerId },
      server.staffToken,
    );
    return result.data.customer.grants.edges.map((edge: any) => edge.node);
  };

  it("a renewal grants the new period's hours, expiring at that period's end; older periods' hours are spent first", async () => {
    const stripeCustomer = stripeId("cus");
    const subscriptionId = stripeId("sub");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail(), mode: "subscription", subscription: subscriptionId });
    stripe.lineItems.set(session.id, "price_pro");
    await deliver(stripeEvent("checkout.session.completed", session));
    const periodStart = Math.floor(Date.now() / 1000);
    const first = invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro", lines: [invoiceLine("price_pro", { periodStart })] });
    const renewal = invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro", lines: [invoiceLine("price_pro", { periodStart: periodStart + month })] });
    await deliver(stripeEvent("invoice.paid", first));
    await deliver(stripeEvent("invoice.paid", renewal));
    const [customer] = await customerByStripeId(stripeCustomer);
    expect(await grantsOf(customer.id)).toEqual([
      { source: "SUBSCRIPTION", grantedSeconds: 50 * hour, remainingSeconds: 50 * hour, heldSeconds: 0, expiresAt: new Date((periodStart + month) * 1000).toISOString(), note: `PRO hours for invoice ${first.id}` },
      { source: "SUBSCRIPTION", grantedSeconds: 50 * hour, remainingSeconds: 50 * hour, heldSeconds: 0, expiresAt: new Date((periodStart + 2 * month) * 1000).toISOString(), note: `PRO hours for invoice ${renewal.id}` },
    ]);
    await server.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 7200, endpoint: "render" }) { replayed } }`, {}, server.tokenFor(customer.id));
    expect((await grantsOf(customer.id)).map((grant: any) => grant.heldSeconds)).toEqual([7200, 0]);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("a refund takes back only from its own pack, never from subscription hours", async () => {
    const stripeCustomer = stripeId("cus");
    const subscriptionId = stripeId("sub");
    const email = uniqueEmail();
    const subscribed = checkoutSession({ customer: stripeCustomer, email, mode: "subscription", subscription: subscriptionId });
    stripe.lineItems.set(subscribed.id, "price_pro");
    await deliver(stripeEvent("checkout.session.completed", subscribed));
    await deliver(stripeEvent("invoice.paid", invoice({ customer: stripeCustomer, subscription: subscriptionId, price: "price_pro" })));
    const paymentIntent = stripeId("pi");
    const pack = checkoutSession({ customer: stripeCustomer, email, paymentIntent });
    stripe.lineItems.set(pack.id, "price_pack10");
    await deliver(stripeEvent("checkout.session.completed", pack));
    const [customer] = await customerByStripeId(stripeCustomer);
    const grants = await grantsOf(customer.id);
    expect(grants.map((grant: any) => [grant.source, grant.remainingSeconds])).toEqual([
      ["SUBSCRIPTION", 50 * hour],
      ["PURCHASE", 10 * hour],
    ]);
    // The pack expires PURCHASE_GRANT_TTL_DAYS (365) after the payment.
    expect(new Date(grants[1].expiresAt).getTime() - Date.now()).toBeGreaterThan(364 * 86_400_000);
    // 55 hours spent: the subscription's 50 (they expire sooner), then 5 of the pack.
    const token = server.tokenFor(customer.id);
    for (let job = 0; job < 3; job += 1) {
      const reserved: any = await server.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 66000, endpoint: "render" }) { reservation { id } } }`, {}, token);
      const confirmed = await server.graphql(`mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 66000 }) { __typename } }`, { id: reserved.data.reserveCredits.reservation.id }, token);
      expect(confirmed.errors).toBeUndefined();
    }
    const charge = fromStripeFixture("charge", { id: stripeId("ch"), payment_intent: paymentIntent, amount: 2000, amount_refunded: 2000, refunded: true, customer: stripeCustomer });
    expect((await deliver(stripeEvent("charge.refunded", charge))).status).toBe(200);
    const after = await grantsOf(customer.id);
    expect(after.map((grant: any) => [grant.source, grant.remainingSeconds])).toEqual([
      ["SUBSCRIPTION", 0],
      ["PURCHASE", 0],
    ]);
    const refunds = await server.sql.query("SELECT delta_seconds FROM ledger_entry WHERE customer_id = $1 AND kind = 'REFUND'", [customer.id]);
    expect(refunds.rows).toEqual([{ delta_seconds: -5 * hour }]);
    await expectConsistentLedger(server.sql, customer.id);
  });

  it("a refund racing reservations: the rest of its pack is taken at once, what the jobs hold as they give it back unused", async () => {
    const paymentIntent = stripeId("pi");
    const { customer, stripeCustomer } = await buyHourPack({ paymentIntent });
    await server.graphql(
      `mutation($input: AdjustCreditsInput!) { adjustCredits(input: $input) { id } }`,
      { input: { customerId: customer.id, deltaSeconds: hour, note: "goodwill" } },
      server.staffToken,
    );
    const token = server.tokenFor(customer.id);
    const charge = fromStripeFixture("charge", { id: stripeId("ch"), payment_intent: paymentIntent, amount: 2000, amount_refunded: 2000, refunded: true, customer: stripeCustomer });
    const [refund, ...attempts] = await Promise.all([
      deliver(stripeEvent("charge.refunded", charge)),
      ...Array.from({ length: 5 }, () =>
        server.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 7200, endpoint: "render" }) { reservation { id } } }`, {}, token),
      ),
    ]);
    expect(refund!.status).toBe(200);
    const reservedCount = attempts.filter((attempt: any) => attempt.data?.reserveCredits).length;
    expect(attempts.length - reservedCount).toBe(attempts.filter((attempt) => errorCodes(attempt).includes("INSUFFICIENT_CREDITS")).length);
    // Each reservation of 2 hours came from the pack (it expires; the goodwill hour never does and cannot cover 2 hours).
    const grants = await grantsOf(customer.id);
    expect(grants.map((grant: any) => [grant.source, grant.remainingSeconds, grant.heldSeconds])).toEqual([
      ["PURCHASE", 0, reservedCount * 7200],
      ["STAFF", hour, 0],
    ]);
    const refunded = await server.sql.query("SELECT COALESCE(SUM(delta_seconds), 0)::int AS taken FROM ledger_entry WHERE customer_id = $1 AND kind = 'REFUND'", [customer.id]);
    expect(refunded.rows[0].taken).toBe(reservedCount * 7200 - 10 * hour);
    const stored = await expectConsistentLedger(server.sql, customer.id);
    expect(stored).toMatchObject({ secondsRemaining: hour, secondsReserved: reservedCount * 7200 });

    // The jobs end: one used 1,000 s of its 7,200 (spent, not taken back), the others nothing.
    const ids = attempts.filter((attempt: any) => attempt.data?.reserveCredits).map((attempt: any) => attempt.data.reserveCredits.reservation.id as string);
    for (const [index, id] of ids.entries()) {
      const settled =
        index === 0
          ? await server.graphql(`mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 1000 }) { __typename } }`, { id }, token)
          : await server.graphql(`mutation($id: ID!) { releaseReservation(input: { reservationId: $id }) { __typename } }`, { id }, token);
      expect(settled.errors).toBeUndefined();
    }
    const [pack] = await grantsOf(customer.id);
    expect([pack.remainingSeconds, pack.heldSeconds]).toEqual([0, 0]);
    const taken = await server.sql.query("SELECT COALESCE(SUM(delta_seconds), 0)::int AS taken FROM ledger_entry WHERE customer_id = $1 AND kind = 'REFUND'", [customer.id]);
    expect(taken.rows[0].taken).toBe(-(10 * hour - (reservedCount > 0 ? 1000 : 0)));
    const final = await expectConsistentLedger(server.sql, customer.id);
    expect(final).toMatchObject({ secondsRemaining: hour, secondsReserved: 0 });
  });
});

describe("refunds and disputes", () => {
  it("take back the unspent part of refunded hours, never below zero, naming the charge", async () => {
    const paymentIntent = stripeId("pi");
    const { customer } = await buyHourPack({ paymentIntent });
    const customerToken = server.tokenFor(customer.id);
    const reserved: any = await server.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 30000, endpoint: "render" }) { reservation { id } } }`, {}, customerToken);
    await server.graphql(
      `mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 30000 }) { balance { secondsRemaining } } }`,
      { id: reserved.data.reserveCredits.reservation.id },
      customerToken,
    );
    const charge = fromStripeFixture("charge", { id: stripeId("ch"), payment_intent: paymentIntent, amount: 2000, amount_refunded: 2000, refunded: true, customer: null });
    const refunded = stripeEvent("charge.refunded", charge);
    expect((await deliver(refunded)).status).toBe(200);
    await deliver(stripeEvent("charge.refunded", charge));
    const stored = await expectConsistentLedger(server.sql, customer.id);
    expect(stored.secondsRemaining).toBe(0);
    const refund = await server.sql.query("SELECT delta_seconds, note, actor FROM ledger_entry WHERE customer_id = $1 AND kind = 'REFUND'", [customer.id]);
    expect(refund.rows).toEqual([{ delta_seconds: -6000, note: `refund of charge ${charge.id}`, actor: `stripe:${refunded.id}` }]);
  });

  it("take back partial refunds in proportion, each share once", async () => {
    const paymentIntent = stripeId("pi");
    const { customer } = await buyHourPack({ paymentIntent });
    const chargeId = stripeId("ch");
    const charge = (refundedCents: number) => fromStripeFixture("charge", { id: chargeId, payment_intent: paymentIntent, amount: 1000, amount_refunded: refundedCents, refunded: refundedCents === 1000 });
    await deliver(stripeEvent("charge.refunded", charge(250)));
    await deliver(stripeEvent("charge.refunded", charge(250)));
    expect((await customerByStripeId((await server.sql.query("SELECT stripe_customer_id FROM customer WHERE id = $1", [customer.id])).rows[0].stripe_customer_id))[0].seconds_remaining).toBe(27000);
    await deliver(stripeEvent("charge.refunded", charge(1000)));
    const stored = await expectConsistentLedger(server.sql, customer.id);
    expect(stored.secondsRemaining).toBe(0);
  });

  it("deactivate the license on a dispute and reactivate it when the dispute is won", async () => {
    const paymentIntent = stripeId("pi");
    const { customer } = await buyHourPack({ paymentIntent });
    const dispute = fromStripeFixture("dispute", { id: stripeId("dp"), charge: stripeId("ch"), payment_intent: paymentIntent, status: "needs_response" });
    await deliver(stripeEvent("charge.dispute.created", dispute));
    const licenseState = async () => (await server.sql.query("SELECT status, deactivation_reason FROM license WHERE customer_id = $1", [customer.id])).rows[0];
    expect(await licenseState()).toEqual({ status: "DEACTIVATED", deactivation_reason: "dispute" });
    await deliver(stripeEvent("charge.dispute.closed", { ...dispute, status: "won" }));
    expect(await licenseState()).toEqual({ status: "ACTIVE", deactivation_reason: null });
  });
});

describe("the webhook route", () => {
  it("refuses unsigned, tampered, stale and foreign-signed bodies with 400 and records nothing", async () => {
    const event = stripeEvent("checkout.session.completed", checkoutSession({ customer: stripeId("cus") }));
    const { body, signature } = signedDelivery(event, webhookSecret);
    const post = (payload: string, headers: Record<string, string>) =>
      fetch(`${server.baseUrl}/webhooks/stripe`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: payload });
    expect((await post(body, {})).status).toBe(400);
    expect((await post(body.replace("paid", "PAID"), { "stripe-signature": signature })).status).toBe(400);
    const stale = signedDelivery(event, webhookSecret, Math.floor(Date.now() / 1000) - 3600);
    expect((await post(stale.body, { "stripe-signature": stale.signature })).status).toBe(400);
    const foreign = signedDelivery(event, "whsec_someone_else");
    expect((await post(foreign.body, { "stripe-signature": foreign.signature })).status).toBe(400);
    const recorded = await server.sql.query("SELECT count(*)::int AS n FROM stripe_event WHERE id = $1", [event.id]);
    expect(recorded.rows[0].n).toBe(0);
  });

  it("refuses an over-large body", async () => {
    const response = await fetch(`${server.baseUrl}/webhooks/stripe`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": "t=1,v1=x" }, body: "x".repeat(1_100_000) });
    expect(response.status).toBe(413);
  });

  it("records unknown event types as IGNORED and answers 200", async () => {
    const event = stripeEvent("customer.tax_id.created", { id: stripeId("txi") });
    expect(await deliver(event)).toEqual({ status: 200, body: { received: true, status: "IGNORED" } });
  });

  it("records an unknown price as FAILED with a clear error and answers 422, so that Stripe retries", async () => {
    const session = checkoutSession({ customer: stripeId("cus") });
    stripe.lineItems.set(session.id, "price_unheard_of");
    const event = stripeEvent("checkout.session.completed", session);
    expect((await deliver(event)).status).toBe(422);
    const stored = await server.sql.query("SELECT status, last_error FROM stripe_event WHERE id = $1", [event.id]);
    expect(stored.rows[0]).toEqual({ status: "FAILED", last_error: "unknown price price_unheard_of: add it to STRIPE_PLANS" });
  });

  it("answers 422 when processing fails, then succeeds on Stripe's retry", async () => {
    const stripeCustomer = stripeId("cus");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail() });
    stripe.lineItems.set(session.id, "price_pack10");
    const event = stripeEvent("checkout.session.completed", session);
    stripe.failNext(1);
    expect((await deliver(event)).status).toBe(422);
    const failed = await server.sql.query("SELECT status, attempts FROM stripe_event WHERE id = $1", [event.id]);
    expect(failed.rows[0]).toEqual({ status: "FAILED", attempts: 1 });
    expect(await customerByStripeId(stripeCustomer)).toEqual([]);
    expect((await deliver(event)).status).toBe(200);
    expect((await customerByStripeId(stripeCustomer))[0].seconds_remaining).toBe(10 * hour);
  });

  it("keeps a signed event it cannot read as FAILED with the reason, answers 200 (a retry cannot help), and lists it for staff", async () => {
    const malformed = { ...stripeEvent("checkout.session.completed", checkoutSession({ customer: stripeId("cus") })), created: "yesterday" };
    expect(await deliver(malformed)).toEqual({ status: 200, body: { received: true, status: "FAILED" } });
    const stored = await server.sql.query("SELECT type, status, last_error FROM stripe_event WHERE id = $1", [malformed.id]);
    expect(stored.rows).toEqual([{ type: "checkout.session.completed", status: "FAILED", last_error: "unreadable event: created: Invalid input: expected number, received string" }]);

    // Without an id it is kept under a key made from the signed bytes: the same delivery, one row.
    const anonymous = { object: "event", type: "invoice.paid", created: 1_700_000_000, data: { object: { id: stripeId("in") } } };
    const { body, signature } = signedDelivery(anonymous, webhookSecret);
    const post = () => fetch(`${server.baseUrl}/webhooks/stripe`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": signature }, body });
    expect((await post()).status).toBe(200);
    expect((await post()).status).toBe(200);
    const kept = await server.sql.query("SELECT id, type, status, last_error FROM stripe_event WHERE payload->'data'->'object'->>'id' = $1", [anonymous.data.object.id]);
    expect(kept.rows).toEqual([{ id: expect.stringMatching(/^unreadable_[0-9a-f]{64}$/), type: "invoice.paid", status: "FAILED", last_error: "unreadable event: id: Invalid input: expected string, received undefined" }]);

    const listed: any = await server.graphql(`{ stripeEvents(status: FAILED, first: 100) { id type lastError } }`, {}, server.staffToken);
    expect(listed.data.stripeEvents.map((row: any) => row.id)).toEqual(expect.arrayContaining([malformed.id, kept.rows[0].id]));
    const replayed: any = await server.graphql(`mutation($id: ID!) { replayStripeEvent(id: $id) { status lastError } }`, { id: malformed.id }, server.staffToken);
    expect(replayed.data.replayStripeEvent).toEqual({ status: "FAILED", lastError: stored.rows[0].last_error });
  });

  it("records an event holding U+0000 in a string (which jsonb refuses) as U+FFFD", async () => {
    const event = stripeEvent("customer.tax_id.created", { id: stripeId("txi"), value: "nul\u0000here" });
    expect(await deliver(event)).toEqual({ status: 200, body: { received: true, status: "IGNORED" } });
    const stored = await server.sql.query("SELECT payload->'data'->'object'->>'value' AS value FROM stripe_event WHERE id = $1", [event.id]);
    expect(stored.rows).toEqual([{ value: "nul\ufffdhere" }]);
  });

  it("records an event of a handled type whose object it cannot use as FAILED and answers 422", async () => {
    const event = stripeEvent("invoice.paid", { id: stripeId("in"), parent: { subscription_details: { subscription: stripeId("sub") } }, lines: { data: "not a list" } });
    expect(await deliver(event)).toEqual({ status: 422, body: { received: true, status: "FAILED" } });
    const stored = await server.sql.query("SELECT status, last_error FROM stripe_event WHERE id = $1", [event.id]);
    expect(stored.rows).toEqual([{ status: "FAILED", last_error: "lines.filter is not a function" }]);
  });

  it("lets staff list events and replay a failed one", async () => {
    const stripeCustomer = stripeId("cus");
    const session = checkoutSession({ customer: stripeCustomer, email: uniqueEmail() });
    stripe.lineItems.set(session.id, "price_pack10");
    const event = stripeEvent("checkout.session.completed", session);
    stripe.failNext(1);
    await deliver(event);
    const listed: any = await server.graphql(`{ stripeEvents(status: FAILED) { id status attempts lastError } }`, {}, server.staffToken);
    expect(listed.data.stripeEvents.map((row: any) => row.id)).toContain(event.id);
    const replayed: any = await server.graphql(`mutation($id: ID!) { replayStripeEvent(id: $id) { id status attempts } }`, { id: event.id }, server.staffToken);
    expect(replayed.data.replayStripeEvent).toEqual({ id: event.id, status: "PROCESSED", attempts: 2 });
    const customer = await server.createCustomer({ initialSeconds: 0 });
    expect(errorCodes(await server.graphql(`{ stripeEvents { id } }`, {}, customer.token))).toEqual(["FORBIDDEN"]);
    const missing = `mutation { replayStripeEvent(id: "evt_never_received") { id } }`;
    expect(errorCodes(await server.graphql(missing, {}, server.staffToken))).toEqual(["STRIPE_EVENT_NOT_FOUND"]);
  });
});

describe("writing back to Stripe", () => {
  it("retries the metadata update through the outbox when Stripe fails", async () => {
    await drainOutbox(server);
    const { stripeCustomer, customer } = await buyHourPack();
    stripe.failNext(2);
    await drainOutbox(server);
    const license = await server.sql.query("SELECT key FROM license WHERE customer_id = $1", [customer.id]);
    expect(stripe.customerMetadata.get(stripeCustomer)).toEqual({ splice_customer_id: customer.id, splice_license_key: license.rows[0].key });
    const attempts = await server.sql.query(
      "SELECT a.succeeded FROM outbox_attempt a JOIN outbox_job j ON j.id = a.job_id WHERE j.customer_id = $1 AND j.kind = 'stripe_customer_metadata' ORDER BY a.attempt",
      [customer.id],
    );
    expect(attempts.rows.map((row) => row.succeeded)).toEqual([false, false, true]);
  });
});

describe("checkout for the dashboard", () => {
  it("creates the Stripe customer once and returns the Checkout URL", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    const start = `mutation($input: StartCheckoutInput!) { startCheckout(input: $input) { id url } }`;
    const input = { priceId: "price_pack10", successUrl: "https://dashboard.splice.test/thanks", cancelUrl: "https://dashboard.splice.test/plans" };
    const first: any = await server.graphql(start, { input }, customer.token);
    expect(first.data.startCheckout.url).toMatch(/^https:\/\/checkout\.stripe\.test\/pay\/cs_test_/);
    await server.graphql(start, { input: { ...input, priceId: "price_pro" } }, customer.token);
    const linked = await server.sql.query("SELECT stripe_customer_id FROM customer WHERE id = $1", [customer.id]);
    expect(linked.rows[0].stripe_customer_id).toMatch(/^cus_/);
    const sessions = stripe.requests.filter((request) => request.path === "/v1/checkout/sessions" && request.body.get("client_reference_id") === customer.id);
    expect(sessions.map((request) => [request.body.get("mode"), request.body.get("customer")])).toEqual([
      ["payment", linked.rows[0].stripe_customer_id],
      ["subscription", linked.rows[0].stripe_customer_id],
    ]);
    const portal: any = await server.graphql(`mutation { openBillingPortal(input: { returnUrl: "https://dashboard.splice.test/account" }) { url } }`, {}, customer.token);
    expect(portal.data.openBillingPortal.url).toBe(`https://billing.stripe.test/session/${linked.rows[0].stripe_customer_id}`);
  });

  it("a refusal by Stripe that retrying cannot fix is PAYMENT_PROVIDER_ERROR (502, no key); Stripe failing is 503", async () => {
    const start = `mutation($input: StartCheckoutInput!) { startCheckout(input: $input) { url } }`;
    const input = { priceId: "price_pack10", successUrl: "https://dashboard.splice.test/ok", cancelUrl: "https://dashboard.splice.test/no" };
    const answerTo = async (customer: { token: string }) => {
      const response = await server.graphql(start, { input }, customer.token);
      return { status: response.status, code: errorCodes(response), message: response.errors?.[0]?.message, retryAfter: response.headers.get("retry-after") };
    };

    stripe.refuseNext(401, "authentication_error", "Invalid API Key provided: sk_test_****************WXYZ");
    const badKey = await answerTo(await server.createCustomer({ initialSeconds: 0 }));
    expect(badKey).toMatchObject({ status: 502, code: ["PAYMENT_PROVIDER_ERROR"], retryAfter: null });
    expect(badKey.message).toBe("Stripe refused the request: Invalid API Key provided: [key]");

    const customer = await server.createCustomer({ initialSeconds: 0 });
    expect((await server.graphql(start, { input }, customer.token)).status).toBe(200);
    stripe.refuseNext(400, "invalid_request_error", "No such price: 'price_pack10'");
    expect(await answerTo(customer)).toEqual({ status: 502, code: ["PAYMENT_PROVIDER_ERROR"], message: "Stripe refused the request: No such price: 'price_pack10'", retryAfter: null });

    stripe.failNext(1);
    expect(await answerTo(customer)).toMatchObject({ status: 503, code: ["SERVICE_UNAVAILABLE"], retryAfter: "2" });
  });

  it("refuses unknown prices, foreign return URLs and callers who are not customers", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    const start = `mutation($input: StartCheckoutInput!) { startCheckout(input: $input) { url } }`;
    const input = { priceId: "price_pack10", successUrl: "https://dashboard.splice.test/ok", cancelUrl: "https://dashboard.splice.test/no" };
    expect(errorCodes(await server.graphql(start, { input: { ...input, priceId: "price_nope" } }, customer.token))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await server.graphql(start, { input: { ...input, successUrl: "https://evil.test/phish" } }, customer.token))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await server.graphql(start, { input }, server.staffToken))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.graphql(start, { input }))).toEqual(["UNAUTHENTICATED"]);
  });
});
