// invoice.paid: a subscription period paid grants the plan's monthly hours, once per invoice,
// expiring with the period (grant-expiry.ts).
import type Stripe from "stripe";
import { succeed } from "../../../platform/failures";
import { subscriptionGrantExpiresAt } from "../grant-expiry";
import { ensureLicenseAndWriteBack, grantOnce, idOf, planFor, unprocessable, type EventHandler, type EventOf } from "./shared";

const isProration = (line: Stripe.InvoiceLineItem) =>
  line.parent?.subscription_item_details?.proration === true || line.parent?.invoice_item_details?.proration === true;

const priceIdOf = (line: Stripe.InvoiceLineItem) => idOf(line.pricing?.price_details?.price);

/**
 * The line that bills the subscription's new period: not a proration (credits for unused time
 * and charges for the rest of a period after a plan change are), priced, and of those the one
 * whose period ends last, so a renewal after an upgrade takes the new plan.
 */
export function newPeriodLine(lines: Stripe.InvoiceLineItem[]): Stripe.InvoiceLineItem | undefined {
  const periodLines = lines.filter((line) => !isProration(line) && priceIdOf(line) !== null);
  return periodLines.reduce<Stripe.InvoiceLineItem | undefined>(
    (latest, line) => (!latest || line.period.end > latest.period.end ? line : latest),
    undefined,
  );
}

export const invoicePaid: EventHandler<EventOf<"invoice.paid">, { paymentIntentIds: string[] }> = {
  async prefetch(context, event) {
    const invoice = event.data.object;
    if (!invoice.parent?.subscription_details?.subscription || !invoice.id) return { paymentIntentIds: [] };
    // Since API version 2025-03-31 an invoice names its payments only in its InvoicePayments.
    const payments = await context.stripe.invoicePayments.list({ invoice: invoice.id, limit: 10 });
    const paymentIntentIds = payments.data.map((payment) => idOf(payment.payment.payment_intent)).filter((id): id is string => id !== null);
    return { paymentIntentIds };
  },
  async apply(context, tx, event, prefetched) {
    const invoice = event.data.object;
    const subscriptionId = idOf(invoice.parent?.subscription_details?.subscription);
    if (!subscriptionId || !invoice.id) return succeed("IGNORED");
    const line = newPeriodLine(invoice.lines?.data ?? []);
    // Only proration lines (a mid-period plan change): the new period is billed by its own invoice.
    if (!line) return succeed("IGNORED");
    // A $0 invoice (a trial period) grants only where configured to.
    if (invoice.amount_paid === 0 && !context.config.stripe.zeroAmountInvoicesGrant) return succeed("IGNORED");
    const priceId = priceIdOf(line);
    const plan = planFor(context, priceId);
    if (!plan.ok) return plan;
    if (plan.value.type !== "subscription") return unprocessable(`price ${priceId} is an hour pack, not a subscription`);
    const stripeCustomerId = idOf(invoice.customer);
    if (!stripeCustomerId) return unprocessable(`invoice ${invoice.id} has no customer`);
    const customer = await context.customers.findOrCreateForStripeInTransaction(tx, stripeCustomerId, invoice.customer_email ?? null);
    const granted = await grantOnce(context, tx, event, {
      key: `invoice:${invoice.id}`,
      customer,
      seconds: plan.value.monthlySeconds,
      paymentIntentId: prefetched.paymentIntentIds[0] ?? null,
      note: `${plan.value.tier} hours for invoice ${invoice.id}`,
      source: "SUBSCRIPTION",
      expiresAt: subscriptionGrantExpiresAt(
        { startSeconds: line.period.start, endSeconds: line.period.end },
        context.config.credits.subscriptionGraceSeconds,
        context.config.credits.subscriptionRolloverMaxPeriods,
      ),
    });
    if (!granted.ok) return granted;
    const delivered = await ensureLicenseAndWriteBack(context, tx, event, customer);
    return delivered.ok ? succeed("PROCESSED") : delivered;
  },
};
