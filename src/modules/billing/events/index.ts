// Which handler applies each Stripe event type; types not listed are recorded and IGNORED.
import type Stripe from "stripe";
import { chargeDisputeClosed } from "./charge-dispute-closed";
import { chargeDisputeCreated } from "./charge-dispute-created";
import { chargeRefunded } from "./charge-refunded";
import { checkoutSessionCompleted } from "./checkout-session-completed";
import { customerSubscriptionChanged } from "./customer-subscription-changed";
import { invoicePaid } from "./invoice-paid";
import type { EventHandler, EventOf } from "./shared";

export { stripeMetadataJobKind, type HandlerContext, type HandlerResult } from "./shared";

const handlers = {
  "checkout.session.completed": checkoutSessionCompleted,
  "checkout.session.async_payment_succeeded": checkoutSessionCompleted,
  "invoice.paid": invoicePaid,
  "customer.subscription.updated": customerSubscriptionChanged,
  "customer.subscription.deleted": customerSubscriptionChanged,
  "charge.refunded": chargeRefunded,
  "charge.dispute.created": chargeDisputeCreated,
  "charge.dispute.closed": chargeDisputeClosed,
} satisfies { [T in Stripe.Event["type"]]?: EventHandler<EventOf<T>, unknown> };

type HandledType = keyof typeof handlers;

/** Event types whose effect depends on a purchase applied before them. */
export const purchaseDependentEventTypes: HandledType[] = ["charge.refunded", "charge.dispute.created", "charge.dispute.closed"];

/** The event's handler, typed for that event (the registry's types make the cast sound). */
export function handlerFor(event: Stripe.Event): EventHandler<Stripe.Event, unknown> | undefined {
  return event.type in handlers ? (handlers[event.type as HandledType] as unknown as EventHandler<Stripe.Event, unknown>) : undefined;
}
