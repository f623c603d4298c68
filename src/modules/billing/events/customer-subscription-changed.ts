// customer.subscription.updated and customer.subscription.deleted: the customer's tier follows
// the subscription's plan, and falls back to STARTER when it ends. Granted hours stay.
import { succeed } from "../../../platform/failures";
import type { Tier } from "../../customers";
import { applySubscriptionState, endedSubscriptionStatuses } from "./subscription-state";
import { idOf, planFor, unprocessable, type EventHandler, type EventOf } from "./shared";

type SubscriptionEvent = EventOf<"customer.subscription.updated"> | EventOf<"customer.subscription.deleted">;

export const customerSubscriptionChanged: EventHandler<SubscriptionEvent> = {
  async apply(context, tx, event) {
    const subscription = event.data.object;
    const stripeCustomerId = idOf(subscription.customer);
    if (!stripeCustomerId) return unprocessable(`subscription ${subscription.id} has no customer`);
    const customer = await context.customers.findOrCreateForStripeInTransaction(tx, stripeCustomerId, null);
    const priceId = idOf(subscription.items?.data?.[0]?.price);
    const status = event.type === "customer.subscription.deleted" ? "canceled" : String(subscription.status);
    let tier: Tier = "STARTER";
    if (!endedSubscriptionStatuses.has(status)) {
      const plan = planFor(context, priceId);
      if (!plan.ok) return plan;
      if (plan.value.type !== "subscription") return unprocessable(`price ${priceId} is an hour pack, not a subscription`);
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
