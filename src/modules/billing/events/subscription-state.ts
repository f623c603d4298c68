// The one ordering rule for everything that sets a customer's tier from a subscription.
import type Stripe from "stripe";
import type { Transaction } from "../../../platform/database";
import type { CustomerRecord, Tier } from "../../customers";
import { actorOf, type HandlerContext } from "./shared";

export const endedSubscriptionStatuses: ReadonlySet<string> = new Set(["canceled", "unpaid", "incomplete_expired"]);

export interface SubscriptionState {
  subscriptionId: string;
  customer: CustomerRecord;
  status: string;
  priceId: string | null;
  /** STARTER when the subscription ended. */
  tier: Tier;
  eventCreated: Date;
}

/**
 * Checkout, subscription created/updated/deleted: an event older than the newest applied is
 * ignored, and an ended subscription is final against any later or same-second event that
 * would revive it. Only a new subscription (another id) brings a paid tier back.
 */
export async function applySubscriptionState(context: HandlerContext, tx: Transaction, event: Stripe.Event, state: SubscriptionState): Promise<boolean> {
  const stored = await context.store.lockSubscription(tx, state.subscriptionId);
  const ending = endedSubscriptionStatuses.has(state.status);
  if (stored && endedSubscriptionStatuses.has(stored.status) && !ending) return false;
  if (stored && stored.lastEventCreated.getTime() > state.eventCreated.getTime()) return false;
  await context.customers.setTierInTransaction(tx, state.customer.id, state.tier);
  await context.licenses.enforceSeatsInTransaction(tx, state.customer.id, state.tier, actorOf(event));
  await context.store.saveSubscription(tx, {
    id: state.subscriptionId,
    customerId: state.customer.id,
    status: state.status,
    priceId: state.priceId,
    eventCreated: state.eventCreated,
  });
  return true;
}
