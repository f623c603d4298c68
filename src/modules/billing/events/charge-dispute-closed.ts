// charge.dispute.closed: a won dispute reactivates the license; any closing is recorded, so a
// creation delivered later knows the dispute is over.
import { succeed } from "../../../platform/failures";
import { customerOfDispute, disputeClosedKey } from "./dispute";
import { disputeReason } from "../../licenses";
import { actorOf, idOf, waitForPurchase, type EventHandler, type EventOf } from "./shared";

export const chargeDisputeClosed: EventHandler<EventOf<"charge.dispute.closed">> = {
  async apply(context, tx, event) {
    const dispute = event.data.object;
    const customerId = await customerOfDispute(context, tx, dispute);
    if (!customerId) return waitForPurchase(idOf(dispute.payment_intent));
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
