// checkout.session.completed, and checkout.session.async_payment_succeeded (a delayed payment
// method that cleared): a subscription starts, or an hour pack is granted once paid.
import { succeed } from "../../../platform/failures";
import { purchaseGrantExpiresAt } from "../grant-expiry";
import { applySubscriptionState } from "./subscription-state";
import { ensureLicenseAndWriteBack, grantOnce, idOf, planFor, unprocessable, type EventHandler, type EventOf } from "./shared";

type CheckoutEvent = EventOf<"checkout.session.completed"> | EventOf<"checkout.session.async_payment_succeeded">;

export const checkoutSessionCompleted: EventHandler<CheckoutEvent, string | null> = {
  async prefetch(context, event) {
    const session = event.data.object;
    const fromMetadata = session.metadata?.splice_price_id;
    if (typeof fromMetadata === "string") return fromMetadata;
    const items = await context.stripe.checkout.sessions.listLineItems(session.id, { limit: 1 });
    return items.data[0]?.price?.id ?? null;
  },
  async apply(context, tx, event, priceId) {
    const session = event.data.object;
    const plan = planFor(context, priceId);
    if (!plan.ok) return plan;
    const stripeCustomerId = idOf(session.customer);
    const email = session.customer_details?.email ?? session.customer_email ?? null;
    // A guest checkout has no Stripe customer: the buyer is found or created by email.
    const customer = stripeCustomerId
      ? await context.customers.findOrCreateForStripeInTransaction(tx, stripeCustomerId, email)
      : await context.customers.findOrCreateForGuestInTransaction(tx, email);
    if (!customer) return unprocessable(`checkout session ${session.id} has neither a customer nor a usable email`);
    if (plan.value.type === "subscription") {
      const subscriptionId = idOf(session.subscription);
      if (!subscriptionId) return unprocessable(`subscription checkout session ${session.id} has no subscription`);
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
        source: "PURCHASE",
        // Paid when this event says so: the session completed (or its delayed payment cleared).
        expiresAt: purchaseGrantExpiresAt(new Date(event.created * 1000), context.config.credits.purchaseGrantTtlDays),
      });
      if (!granted.ok) return granted;
    }
    const delivered = await ensureLicenseAndWriteBack(context, tx, event, customer);
    return delivered.ok ? succeed("PROCESSED") : delivered;
  },
};
