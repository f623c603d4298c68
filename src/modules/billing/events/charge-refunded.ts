// charge.refunded: the refunded share of the payment's grant is taken back from that grant
// only: what it has remaining now, and what running jobs hold of it as they give it back
// (never below zero).
import { succeed } from "../../../platform/failures";
import { refundDueSeconds } from "../refund-share";
import { actorOf, idOf, isGrantEffect, waitForPurchase, type EventHandler, type EventOf } from "./shared";

export const chargeRefunded: EventHandler<EventOf<"charge.refunded">> = {
  async apply(context, tx, event) {
    const charge = event.data.object;
    const refundKey = `refund:${charge.id}:`;
    // Grants are found by the payment; this charge's earlier refunds by the charge.
    const effects = await context.store.effectsOfPayment(tx, idOf(charge.payment_intent), charge.id);
    const grants = effects.filter((effect) => isGrantEffect(effect.key));
    if (grants.length === 0) return waitForPurchase(idOf(charge.payment_intent));
    const dueSeconds = refundDueSeconds({
      grantedSeconds: grants.reduce((sum, effect) => sum + effect.grantedSeconds, 0),
      chargeAmount: charge.amount,
      amountRefunded: charge.amount_refunded,
      takenBackSeconds: effects.filter((effect) => effect.key.startsWith(refundKey)).reduce((sum, effect) => sum + effect.grantedSeconds, 0),
    });
    const key = `${refundKey}${charge.amount_refunded}`;
    if (dueSeconds === 0 || (await context.store.findEffect(tx, key))) return succeed("PROCESSED");
    const customerId = grants[0]!.customerId;
    await context.store.insertEffect(tx, { key, customerId, eventId: event.id, grantedSeconds: dueSeconds, stripePaymentIntentId: null, stripeChargeId: charge.id });
    // Only from the grants this payment made, never from other hours the customer has.
    const taken = await context.credits.takeBackInTransaction(tx, customerId, dueSeconds, {
      origins: grants.map((effect) => effect.key),
      actor: actorOf(event),
      note: `refund of charge ${charge.id}`,
    });
    return taken.ok ? succeed("PROCESSED") : taken;
  },
};
