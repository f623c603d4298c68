// The Stripe inbox: every verified event is recorded by its id, then processed in one
// Serializable transaction that locks the event, applies its handler's effects and marks it
// done. A duplicate finds it done; a failure leaves it FAILED (with its error) for Stripe's
// retry or a replay by staff.
import type { Logger } from "pino";
import type Stripe from "stripe";
import { Policy } from "../../platform/authorization";
import { billingPermissions } from "./billing.permissions";
import type { Caller } from "../../platform/auth";
import type { Database, Transactor } from "../../platform/database";
import { fail, succeed, type Outcome } from "../../platform/failures";
import type { BillingStore, StripeEventRecord, StripeEventStatus } from "./billing.store";
import { handlerFor, purchaseDependentEventTypes, type HandlerContext } from "./events";

export type ProcessingResult = "PROCESSED" | "IGNORED" | "FAILED";

export interface WebhooksDependencies {
  database: Database;
  transactor: Transactor;
  store: BillingStore;
  handlerContext: HandlerContext;
  logger: Logger;
  now: () => Date;
  pageSizeMax: number;
}

const policy = new Policy(billingPermissions);

/** A handler's expected failure (unknown price, missing customer): recorded, not thrown further. */
class EventFailed extends Error {}

export class WebhooksService {
  constructor(private readonly deps: WebhooksDependencies) {}

  /** Verifies the signature; undefined when the body is not a genuine, fresh Stripe event. */
  verify(rawBody: Buffer, signature: string | undefined): Stripe.Event | undefined {
    if (!signature) return undefined;
    const { stripe, config } = this.deps.handlerContext;
    try {
      return stripe.webhooks.constructEvent(rawBody, signature, config.stripe.webhookSecret, config.stripe.webhookToleranceSeconds);
    } catch {
      return undefined;
    }
  }

  async receive(event: Stripe.Event): Promise<ProcessingResult> {
    await this.deps.store.recordEvent(this.deps.database, event);
    return this.process(event.id);
  }

  async process(eventId: string): Promise<ProcessingResult> {
    const stored = await this.deps.store.findEvent(this.deps.database, eventId);
    if (!stored) throw new Error(`event ${eventId} was not recorded`);
    if (stored.status === "PROCESSED" || stored.status === "IGNORED") return stored.status;
    const handler = handlerFor(stored.payload);
    try {
      const prefetched = handler?.prefetch ? await handler.prefetch(this.deps.handlerContext, stored.payload) : undefined;
      const result = await this.deps.transactor.serializable(async (tx) => {
        const locked = await this.deps.store.lockEvent(tx, eventId);
        if (!locked) throw new Error(`event ${eventId} disappeared`);
        if (locked.status === "PROCESSED" || locked.status === "IGNORED") return locked.status;
        const outcome = handler ? await handler.apply(this.deps.handlerContext, tx, locked.payload, prefetched) : succeed("IGNORED" as const);
        if (!outcome.ok) throw new EventFailed("message" in outcome.failure && outcome.failure.message ? outcome.failure.message : outcome.failure.code);
        await this.deps.store.markDone(tx, eventId, outcome.value, this.deps.now());
        return outcome.value;
      });
      if (result === "PROCESSED") await this.runEventsWaitingFor(eventId);
      return result;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      await this.deps.store.markFailed(this.deps.database, eventId, message);
      if (!(error instanceof EventFailed)) this.deps.logger.error({ err: error, eventId, type: stored.type }, "Stripe event processing failed");
      else this.deps.logger.warn({ eventId, type: stored.type, error: message }, "Stripe event failed");
      return "FAILED";
    }
  }

  /** Refunds and disputes that arrived before the purchase this event applied run now, in Stripe's order. */
  private async runEventsWaitingFor(eventId: string): Promise<void> {
    const waiting = await this.deps.store.eventsWaitingForPaymentsOf(this.deps.database, eventId, purchaseDependentEventTypes);
    for (const waitingId of waiting) await this.process(waitingId);
  }

  /** Received events by type and status, for metrics. */
  eventCounts(): Promise<{ type: string; status: string; count: number }[]> {
    return this.deps.store.countByTypeAndStatus(this.deps.database);
  }

  async recent(caller: Caller, status: StripeEventStatus | null | undefined, first: number): Promise<Outcome<StripeEventRecord[]>> {
    const denied = policy.check("Query.stripeEvents", caller);
    if (denied) return fail(denied);
    return succeed(await this.deps.store.recentEvents(this.deps.database, status ?? undefined, Math.min(first, this.deps.pageSizeMax)));
  }

  /** Staff: runs a recorded event again (a FAILED one after the cause was fixed). */
  async replay(caller: Caller, eventId: string): Promise<Outcome<StripeEventRecord>> {
    const denied = policy.check("Mutation.replayStripeEvent", caller);
    if (denied) return fail(denied);
    if (!(await this.deps.store.findEvent(this.deps.database, eventId))) return fail({ code: "STRIPE_EVENT_NOT_FOUND" });
    await this.process(eventId);
    return succeed((await this.deps.store.findEvent(this.deps.database, eventId))!);
  }
}
