// What the load works on, created through the API before the faults start: customers with
// known starting balances (so money can be counted to the second), STARTER licenses with few
// seats, and the Stripe payments that the webhook clients will deliver.
import { fromStripeFixture } from "../../test/support/stripe-fixtures";
import { stripeEvent, stripeId } from "../../test/support/fake-stripe";
import type { Cluster } from "./cluster";
import { packPriceId } from "./cluster";
import type { Random } from "./random";

export interface MoneyCustomer {
  id: string;
  email: string;
  token: string;
  initialSeconds: number;
}

export interface SeatLicense {
  customerId: string;
  key: string;
}

export interface PaymentEvent {
  id: string;
  customerId: string;
  event: Record<string, unknown>;
}

export interface Fixtures {
  customers: MoneyCustomer[];
  licenses: SeatLicense[];
  payments: PaymentEvent[];
  /** A customer only the heal probes read. */
  probeToken: string;
}

const customerCount = 5;
const licenseCount = 4;
const richSeconds = 500_000;
/** One customer starts nearly empty: it meets INSUFFICIENT_CREDITS until payments top it up. */
const poorSeconds = 300;
/** Stripe payments per minute of load, each delivered one to three times. */
export const paymentsPerMinute = 30;

async function staffMutation(cluster: Cluster, query: string, variables: Record<string, unknown>): Promise<any> {
  const response = await fetch(`${cluster.baseUrl(0)}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${cluster.staffToken()}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown };
  if (!body.data || body.errors) throw new Error(`setup failed (${response.status}): ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function createCustomer(cluster: Cluster, label: string, initialSeconds: number, runId: string): Promise<MoneyCustomer> {
  const email = `nemesis-${label}-${runId}@example.com`;
  const data = await staffMutation(cluster, `mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { id } }`, {
    input: { email, tier: "STARTER", initialSeconds },
  });
  const id = data.createCustomer.id as string;
  return { id, email, token: cluster.customerToken(id), initialSeconds };
}

/** A guest checkout of one hour pack by this customer's email (no Stripe customer, no API call). */
function paymentFor(customer: MoneyCustomer): PaymentEvent {
  const example = fromStripeFixture("checkout.session", {});
  const session = fromStripeFixture("checkout.session", {
    id: stripeId("cs_nemesis"),
    customer: null,
    customer_details: { ...(example.customer_details as object), email: customer.email },
    customer_email: null,
    mode: "payment",
    payment_status: "paid",
    payment_intent: stripeId("pi"),
    subscription: null,
    status: "complete",
    metadata: { splice_price_id: packPriceId },
  });
  const event = stripeEvent("checkout.session.completed", session);
  return { id: event.id, customerId: customer.id, event };
}

export async function createFixtures(cluster: Cluster, random: Random, loadMinutes: number): Promise<Fixtures> {
  const runId = `${random.seed}-${Date.now().toString(36)}`;
  const customers: MoneyCustomer[] = [];
  for (let index = 0; index < customerCount; index += 1) {
    customers.push(await createCustomer(cluster, `money${index}`, index === 0 ? poorSeconds : richSeconds, runId));
  }
  const licenses: SeatLicense[] = [];
  for (let index = 0; index < licenseCount; index += 1) {
    const owner = await createCustomer(cluster, `seats${index}`, 0, runId);
    const data = await staffMutation(cluster, `mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: owner.id });
    licenses.push({ customerId: owner.id, key: data.issueLicense.license.key });
  }
  const probe = await createCustomer(cluster, "probe", 0, runId);
  const paymentCount = Math.max(1, Math.round(paymentsPerMinute * loadMinutes));
  const payments = Array.from({ length: paymentCount }, () => paymentFor(random.pick(customers)));
  return { customers, licenses, payments, probeToken: probe.token };
}
