// What every Stripe event handler works with: the handler shape, typed by the SDK's Stripe.Event
// union, and the effects several event types share. A handler may first read from Stripe
// (outside any transaction), then applies its effects inside the event's Serializable
// transaction. Effects are keyed by what was paid for, so a payment never grants twice,
// whichever events bring it.
import type Stripe from "stripe";
import type { Config } from "../../../config";
import type { Transaction } from "../../../platform/database";
import { fail, succeed, type Outcome } from "../../../platform/failures";
import type { OutboxStore } from "../../../platform/outbox/outbox.store";
import type { CreditsService, GrantSource } from "../../credits";
import type { CustomerRecord, CustomersService } from "../../customers";
import type { LicensesService } from "../../licenses";
import type { BillingStore } from "../billing.store";
import type { Plan } from "../plan";
import type { StripeClient } from "../stripe-client";

export type HandlerResult = "PROCESSED" | "IGNORED";

export interface HandlerContext {
  config: Config;
  plans: ReadonlyMap<string, Plan>;
  store: BillingStore;
  customers: CustomersService;
  credits: CreditsService;
  licenses: LicensesService;
  outbox: OutboxStore;
  stripe: StripeClient;
}

/** The SDK's type of one event type: its data.object is that type's Stripe object. */
export type EventOf<T extends Stripe.Event["type"]> = Extract<Stripe.Event, { type: T }>;

export interface EventHandler<E extends Stripe.Event, Prefetched = undefined> {
  /** Reads from the Stripe API that the effects need; never inside a transaction. */
  prefetch?(context: HandlerContext, event: E): Promise<Prefetched>;
  apply(context: HandlerContext, tx: Transaction, event: E, prefetched: Prefetched): Promise<Outcome<HandlerResult>>;
}

export const stripeMetadataJobKind = "stripe_customer_metadata";

export const actorOf = (event: Stripe.Event) => `stripe:${event.id}`;

/** A reference Stripe may expand: an id, an object with one, or nothing. */
export const idOf = (value: string | { id: string } | null | undefined): string | null =>
  typeof value === "string" ? value : value?.id ?? null;

export const unprocessable = (message: string) => fail({ code: "STRIPE_EVENT_UNPROCESSABLE", message });

/**
 * A refund or dispute whose purchase has not been applied yet (its event is still on its way or
 * FAILED) must not be lost: it fails, so Stripe retries it, and it is run again as soon as the
 * purchase is applied (WebhooksService). Without a payment intent it cannot be one of ours.
 */
export function waitForPurchase(paymentIntentId: string | null): Outcome<HandlerResult> {
  if (!paymentIntentId) return succeed("IGNORED");
  return unprocessable(`waiting for the purchase of payment ${paymentIntentId}: applied when it arrives`);
}

export const isGrantEffect = (key: string) => !key.startsWith("refund:") && !key.startsWith("dispute:");

export function planFor(context: HandlerContext, priceId: string | null): Outcome<Plan> {
  const plan = priceId ? context.plans.get(priceId) : undefined;
  return plan ? succeed(plan) : unprocessable(`unknown price ${priceId ?? "(none)"}: add it to STRIPE_PLANS`);
}

/** Grants a payment's seconds once: the effect's key is what was paid for. */
export async function grantOnce(
  context: HandlerContext,
  tx: Transaction,
  event: Stripe.Event,
  effect: {
    key: string;
    customer: CustomerRecord;
    seconds: number;
    paymentIntentId: string | null;
    note: string;
    source: Extract<GrantSource, "SUBSCRIPTION" | "PURCHASE">;
    expiresAt: Date | null;
  },
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
  // The grant's origin is the effect's key: a refund finds the grant its payment made by it.
  const granted = await context.credits.grantInTransaction(tx, effect.customer.id, effect.seconds, {
    kind: "GRANT",
    source: effect.source,
    expiresAt: effect.expiresAt,
    origin: effect.key,
    actor: actorOf(event),
    note: effect.note,
  });
  return granted.ok ? succeed(undefined) : granted;
}

/** Every paying customer has a license (mailed) and Splice's ids on their Stripe customer. */
export async function ensureLicenseAndWriteBack(
  context: HandlerContext,
  tx: Transaction,
  event: Stripe.Event,
  customer: CustomerRecord,
): Promise<Outcome<void>> {
  const issued = await context.licenses.issueInTransaction(tx, customer.id, actorOf(event));
  if (!issued.ok) return issued;
  // Without a Stripe customer (a guest checkout) there is nothing at Stripe to write back to.
  if (issued.value.created && customer.stripeCustomerId) {
    await context.outbox.enqueue(tx, { kind: stripeMetadataJobKind, customerId: customer.id, payload: { customerId: customer.id } });
  }
  return succeed(undefined);
}
