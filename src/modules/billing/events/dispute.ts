// What the two dispute events share: the disputed payment's customer, and the closing record.
import type Stripe from "stripe";
import type { Transaction } from "../../../platform/database";
import { idOf, isGrantEffect, type HandlerContext } from "./shared";

export async function customerOfDispute(context: HandlerContext, tx: Transaction, dispute: Stripe.Dispute): Promise<string | undefined> {
  const effects = await context.store.effectsOfPayment(tx, idOf(dispute.payment_intent), idOf(dispute.charge));
  return effects.find((effect) => isGrantEffect(effect.key))?.customerId;
}

export const disputeClosedKey = (disputeId: string) => `dispute:${disputeId}:closed`;
