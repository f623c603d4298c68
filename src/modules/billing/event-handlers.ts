// What each Stripe event does. A handler may first read from Stripe (outside any transaction),
// then applies its effects inside the event's Serializable transaction. Effects are keyed by
// what was paid for, so a payment never grants twice, whichever events bring it.
import type { Config, Plan, Tier } from "../../config";
import type { Transaction } from "../../platform/database";
import { fail, succeed, type Outcome } from "../../platform/failures";
import type { CreditsService } from "../credits/credits.service";
import type { CustomerRecord } from "../customers/customer";
import type { CustomersService } from "../customers/customers.service";
import type { LicensesService } from "../licenses/licenses.service";
import type { OutboxStore } from "../../platform/outbox/outbox.store";
import type { BillingStore, StripeEventPayload } from "./billing.store";
import type { StripeClient } from "./stripe-client";

export type HandlerResult = "PROCESSED" | "IGNORED";

export interface HandlerContext {
  config: Config;
  store: BillingStore;
  customers: CustomersService;
  credits: CreditsService;
  licenses: LicensesService;
  outbox: OutboxStore;
  stripe: StripeClient;
}

export interface EventHandler<Prefetched = unknown> {
  /** Reads from the Stripe API that the effects need; never inside a transaction. */
  prefetch?(context: HandlerContext, event: StripeEventPayload): Promise<Prefetched>;
  apply(context: HandlerContext, tx: Transaction, event: StripeEventPayload, prefetched: Prefetched): Promise<Outcome<HandlerResult>>;
}

export const stripeMetadataJobKind = "stripe_customer_metadata";
export const disputeReason = "dispute";

const actorOf = (event: StripeEventPayload) => `stripe:${event.id}`;
const idOf = (value: unknown): string | null =>
  typeof value === "string" ? value : value && typeof value === "object" && typeof (value as { id?: unknown }).id === "string" ? (value as { id: string }).id : null;
const processingFailure = (message: string) => fail({ code: "BAD_USER_INPUT", message });

/** Event types whose effect depends on a purchase applied before them. */
export const purchaseDependentEventTypes = ["charge.refunded", "charge.dispute.created", "charge.dispute.closed"];

/**
 * A refund or dispute whose purchase has not been applied yet (its event is still on its way or
 * FAILED) must not be lost: it fails, so Stripe retries it, and it is run again as soon as the
 * purchase is applied (WebhooksService). Without a payment intent it cannot be one of ours.
 */
function waitForPurchase(paymentIntentId: string | null): Outcome<HandlerResult> {
  if (!paymentIntentId) return succeed("IGNORED");
  return processingFailure(`waiting for the purchase of payment ${paymentIntentId}: applied when it arrives`);
}

const isGrantEffect = (key: string) => !key.startsWith("refund:") && !key.startsWith("dispute:");

function planOf(context: HandlerContext, priceId: string | null): Outcome<Plan> {
  const plan = priceId ? context.config.stripe.plans.get(priceId) : undefined;
  return plan ? succeed(plan) : processingFailure(`unknown price ${priceId ?? "(none)"}: add it to STRIPE_PLANS`);
}

/** Grants a payment's seconds once: the effect's key is what was paid for. */
async function grantOnce(
  context: HandlerContext,
  tx: Transaction,
  event: StripeEventPayload,
  effect: { key: string; customer: CustomerRecord; seconds: number; paymentIntentId: string | null; note: string },
): Promise<Outcome<void>> {
  if (await context.store.findEffect(tx, effect.key)) return succeed(undefined);
  await context.store.insertEffect(tx, {
    key: effect.key,
    customerId: effect.customer.id,
    eventId: event.id,
    grantedSeconds: effect.seconds,
    stripePaymentIntentId: effect.paymentIntentId,
    stripeChargeId: null,
  });
  if (effect.seconds === 0) return succeed(undefined);
  const granted = await context.credits.grantInTransaction(tx, effect.customer.id, effect.seconds, {
    kind: "GRANT",
    actor: actorOf(event),
    note: effect.note,
  });
  return granted.ok ? succeed(undefined) : granted;
}

/** Every paying customer has a license (mailed) and Splice's ids on their Stripe customer. */
async function ensureLicenseAndWriteBack(context: HandlerContext, tx: Transaction, event: StripeEventPayload, customer: CustomerRecord): Promise<Outcome<void>> {
  const issued = await context.licenses.issueInTransaction(tx, customer.id, actorOf(event));
  if (!issued.ok) return issued;
  // Without a Stripe customer (a guest checkout) there is nothing at Stripe to write back to.
  if (issued.value.created && customer.stripeCustomerId) {
    await context.outbox.enqueue(tx, { kind: stripeMetadataJobKind, customerId: customer.id, payload: { customerId: customer.id } });
  }
  return succeed(undefined);
}

const checkoutFulfilment: EventHandler<string | null> = {
  async prefetch(context, event) {
    const session = event.data.object;
    const fromMetadata = session.metadata?.splice_price_id;
    if (typeof fromMetadata === "string") return fromMetadata;
    const items = await context.stripe.checkout.sessions.listLineItems(session.id, { limit: 1 });
    return items.data[0]?.price?.id ?? null;
  },
  async apply(context, tx, event, priceId) {
    const session = event.data.object;
    const plan = planOf(context, priceId);
    if (!plan.ok) return plan;
    const stripeCustomerId = idOf(session.customer);
    const email = session.customer_details?.email ?? session.customer_email ?? null;
    // A guest checkout has no Stripe customer: the buyer is found or created by email.
    const customer = stripeCustomerId
      ? await context.customers.findOrCreateForStripeInTransaction(tx, stripeCustomerId, email)
      : await context.customers.findOrCreateForGuestInTransaction(tx, email);
    if (!customer) return processingFailure(`checkout session ${session.id} has neither a customer nor a usable email`);
    if (plan.value.type === "subscription") {
      const subscriptionId = idOf(session.subscription);
      if (!subscriptionId) return processingFailure(`subscription checkout session ${session.id} has no subscription`);
      await applySubscriptionState(context, tx, event, {
        subscriptionId,
        customer,
        status: "active",
        priceId,
        tier: plan.value.tier,
        eventCreated: new Date(event.created * 1000),
      });
    } else if (session.payment_status === "paid") {
      const granted = await grantOnce(context, tx, event, {
        key: `checkout_session:${session.id}`,
        customer,
        seconds: plan.value.seconds,
        paymentIntentId: idOf(session.payment_intent),
        note: `hour pack ${priceId}, checkout session ${session.id}`,
      });
      if (!granted.ok) return granted;
    }
    const delivered = await ensureLicenseAndWriteBack(context, tx, event, customer);
    return delivered.ok ? succeed("PROCESSED") : delivered;
  },
};

interface InvoiceLine {
  period?: { start?: number; end?: number };
  pricing?: { price_details?: { price?: unknown } };
  parent?: { subscription_item_details?: { proration?: boolean } | null; invoice_item_details?: { proration?: boolean } | null } | null;
}

const isProration = (line: InvoiceLine) =>
  line.parent?.subscription_item_details?.proration === true || line.parent?.invoice_item_details?.proration === true;

/**
 * The line that bills the subscription's new period: not a proration (credits for unused time
 * and charges for the rest of a period after a plan change are), priced, and of those the one
 * whose period ends last, so a renewal after an upgrade takes the new plan.
 */
function newPeriodLine(lines: InvoiceLine[]): InvoiceLine | undefined {
  const periodLines = lines.filter((line) => !isProration(line) && idOf(line.pricing?.price_details?.price) !== null);
  return periodLines.reduce<InvoiceLine | undefined>((latest, line) => (!latest || (line.period?.end ?? 0) > (latest.period?.end ?? 0) ? line : latest), undefined);
}

const invoicePaid: EventHandler<{ paymentIntentIds: string[] }> = {
  async prefetch(context, event) {
    const invoice = event.data.object;
    if (!invoice.parent?.subscription_details?.subscription) return { paymentIntentIds: [] };
    // Since API version 2025-03-31 an invoice names its payments only in its InvoicePayments.
    const payments = await context.stripe.invoicePayments.list({ invoice: invoice.id, limit: 10 });
    const paymentIntentIds = payments.data.map((payment) => idOf(payment.payment.payment_intent)).filter((id): id is string => id !== null);
    return { paymentIntentIds };
  },
  async apply(context, tx, event, prefetched) {
    const invoice = event.data.object;
    const subscriptionId = idOf(invoice.parent?.subscription_details?.subscription);
    if (!subscriptionId) return succeed("IGNORED");
    const line = newPeriodLine(invoice.lines?.data ?? []);
    // Only proration lines (a mid-period plan change): the new period is billed by its own invoice.
    if (!line) return succeed("IGNORED");
    // A $0 invoice (a trial period) grants only where configured to.
    if (invoice.amount_paid === 0 && !context.config.stripe.zeroAmountInvoicesGrant) return succeed("IGNORED");
    const priceId = idOf(line.pricing?.price_details?.price);
    const plan = planOf(context, priceId);
    if (!plan.ok) return plan;
    if (plan.value.type !== "subscription") return processingFailure(`price ${priceId} is an hour pack, not a subscription`);
    const stripeCustomerId = idOf(invoice.customer);
    if (!stripeCustomerId) return processingFailure(`invoice ${invoice.id} has no customer`);
    const customer = await context.customers.findOrCreateForStripeInTransaction(tx, stripeCustomerId, invoice.customer_email ?? null);
    const granted = await grantOnce(context, tx, event, {
      key: `invoice:${invoice.id}`,
      customer,
      seconds: plan.value.monthlySeconds,
      paymentIntentId: prefetched.paymentIntentIds[0] ?? null,
      note: `${plan.value.tier} hours for invoice ${invoice.id}`,
    });
    if (!granted.ok) return granted;
    const delivered = await ensureLicenseAndWriteBack(context, tx, event, customer);
    return delivered.ok ? succeed("PROCESSED") : delivered;
  },
};

const endedSubscriptionStatuses = new Set(["canceled", "unpaid", "incomplete_expired"]);

interface SubscriptionState {
  subscriptionId: string;
  customer: CustomerRecord;
  status: string;
  priceId: string | null;
  /** STARTER when the subscription ended. */
  tier: Tier;
  eventCreated: Date;
}

/**
 * The one ordering rule for everything that sets a customer's tier from a subscription
 * (checkout, subscription created/updated/deleted): an event older than the newest applied is
 * ignored, and an ended subscription is final against any later or same-second event that
 * would revive it. Only a new subscription (another id) brings a paid tier back.
 */
async function applySubscriptionState(context: HandlerContext, tx: Transaction, event: StripeEventPayload, state: SubscriptionState): Promise<boolean> {
  const stored = await context.store.lockSubscription(tx, state.subscriptionId);
  const ending = endedSubscriptionStatuses.has(state.status);
  if (stored && endedSubscriptionStatuses.has(stored.status) && !ending) return false;
  if (stored && stored.lastEventCreated.getTime() > state.eventCreated.getTime()) return false;
  await context.customers.setTierInTransaction(tx, state.customer.id, state.tier);
  await context.licenses.enforceSeatsInTransaction(tx, state.customer.id, actorOf(event));
  await context.store.saveSubscription(tx, {
    id: state.subscriptionId,
    customerId: state.customer.id,
    status: state.status,
    priceId: state.priceId,
    eventCreated: state.eventCreated,
  });
  return true;
}

const subscriptionChange: EventHandler = {
  async apply(context, tx, event) {
    const subscription = event.data.object;
    const stripeCustomerId = idOf(subscription.customer);
    if (!stripeCustomerId) return processingFailure(`subscription ${subscription.id} has no customer`);
    const customer = await context.customers.findOrCreateForStripeInTransaction(tx, stripeCustomerId, null);
    const priceId = idOf(subscription.items?.data?.[0]?.price);
    const status = event.type === "customer.subscription.deleted" ? "canceled" : String(subscription.status);
    let tier: Tier = "STARTER";
    if (!endedSubscriptionStatuses.has(status)) {
      // Renewals stop on cancellation; hours already granted stay.
      const plan = planOf(context, priceId);
      if (!plan.ok) return plan;
      if (plan.value.type !== "subscription") return processingFailure(`price ${priceId} is an hour pack, not a subscription`);
      tier = plan.value.tier;
    }
    const applied = await applySubscriptionState(context, tx, event, {
      subscriptionId: subscription.id,
      customer,
      status,
      priceId,
      tier,
      eventCreated: new Date(event.created * 1000),
    });
    return succeed(applied ? "PROCESSED" : "IGNORED");
  },
};

const chargeRefunded: EventHandler = {
  async apply(context, tx, event) {
    const charge = event.data.object;
    const refundKey = `refund:${charge.id}:`;
    // Grants are found by the payment; this charge's earlier refunds by the charge.
    const effects = await context.store.effectsOfPayment(tx, idOf(charge.payment_intent), charge.id);
    const grants = effects.filter((effect) => isGrantEffect(effect.key));
    if (grants.length === 0) return waitForPurchase(idOf(charge.payment_intent));
    const grantedSeconds = grants.reduce((sum, effect) => sum + effect.grantedSeconds, 0);
    const refundedFraction = charge.amount > 0 ? Math.min(1, charge.amount_refunded / charge.amount) : 1;
    // charge.refunded repeats for each partial refund with the running total: take back the
    // share not yet taken back.
    const owedSeconds = Math.floor(grantedSeconds * refundedFraction);
    const alreadySeconds = effects.filter((effect) => effect.key.startsWith(refundKey)).reduce((sum, effect) => sum + effect.grantedSeconds, 0);
    const dueSeconds = owedSeconds - alreadySeconds;
    const key = `${refundKey}${charge.amount_refunded}`;
    if (dueSeconds <= 0 || (await context.store.findEffect(tx, key))) return succeed("PROCESSED");
    const customerId = grants[0]!.customerId;
    await context.store.insertEffect(tx, { key, customerId, eventId: event.id, grantedSeconds: dueSeconds, stripePaymentIntentId: null, stripeChargeId: charge.id });
    const taken = await context.credits.takeBackInTransaction(tx, customerId, dueSeconds, {
      actor: actorOf(event),
      note: `refund of charge ${charge.id}`,
    });
    return taken.ok ? succeed("PROCESSED") : taken;
  },
};

async function customerOfDispute(context: HandlerContext, tx: Transaction, dispute: Record<string, any>): Promise<string | undefined> {
  const effects = await context.store.effectsOfPayment(tx, idOf(dispute.payment_intent), idOf(dispute.charge));
  return effects.find((effect) => isGrantEffect(effect.key))?.customerId;
}

const disputeClosedKey = (disputeId: string) => `dispute:${disputeId}:closed`;

const disputeCreated: EventHandler = {
  async apply(context, tx, event) {
    const dispute = event.data.object;
    const customerId = await customerOfDispute(context, tx, dispute);
    if (!customerId) return waitForPurchase(idOf(dispute.payment_intent));
    // Delivered after its own closing: the dispute is over, nothing to deactivate.
    if (await context.store.findEffect(tx, disputeClosedKey(dispute.id))) return succeed("PROCESSED");
    await context.licenses.deactivateInTransaction(tx, customerId, disputeReason, actorOf(event));
    return succeed("PROCESSED");
  },
};

const disputeClosed: EventHandler = {
  async apply(context, tx, event) {
    const dispute = event.data.object;
    const customerId = await customerOfDispute(context, tx, dispute);
    if (!customerId) return waitForPurchase(idOf(dispute.payment_intent));
    // Recorded so that a creation delivered later knows the dispute is over.
    if (!(await context.store.findEffect(tx, disputeClosedKey(dispute.id)))) {
      await context.store.insertEffect(tx, {
        key: disputeClosedKey(dispute.id),
        customerId,
        eventId: event.id,
        grantedSeconds: 0,
        stripePaymentIntentId: idOf(dispute.payment_intent),
        stripeChargeId: idOf(dispute.charge),
      });
    }
    if (dispute.status === "won") await context.licenses.reactivateInTransaction(tx, customerId, disputeReason, actorOf(event));
    return succeed("PROCESSED");
  },
};

export const eventHandlers: Record<string, EventHandler<any>> = {
  "checkout.session.completed": checkoutFulfilment,
  "checkout.session.async_payment_succeeded": checkoutFulfilment,
  "invoice.paid": invoicePaid,
  "customer.subscription.updated": subscriptionChange,
  "customer.subscription.deleted": subscriptionChange,
  "charge.refunded": chargeRefunded,
  "charge.dispute.created": disputeCreated,
  "charge.dispute.closed": disputeClosed,
};
