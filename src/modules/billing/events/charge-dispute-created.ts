// charge.dispute.created: the disputed payment's license is deactivated until the dispute is won.
import { succeed } from "../../../platform/failures";
import { customerOfDispute, disputeClosedKey } from "./dispute";
import { disputeReason } from "../../licenses";
import { actorOf, idOf, waitForPurchase, type EventHandler, type EventOf } from "./shared";

export const chargeDisputeCreated: EventHandler<EventOf<"charge.dispute.created">> = {
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
