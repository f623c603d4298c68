// The Stripe inbox: every verified event is recorded by its id, then processed in one
// Serializable transaction that locks the event, applies its handler's effects and marks it
// done. A duplicate finds it done; a failure leaves it FAILED (with its error) for Stripe's
// retry or a replay by staff. An event whose envelope cannot be read is kept FAILED too. A
// database that cannot answer is thrown on (the route answers 503): nothing is marked then.
import type { Logger } from "pino";
import { Policy } from "../../platform/authorization";
import { billingPermissions } from "./billing.permissions";
import type { Caller } from "../../platform/auth";
import type { Database, Transactor } from "../../platform/database";
import { isUnavailable } from "../../platform/errors";
import { fail, succeed, type Outcome } from "../../platform/failures";
import type { BillingStore, StripeEventRecord, StripeEventStatus } from "./billing.store";
import { handlerFor, purchaseDependentEventTypes, type HandlerContext } from "./events";
import { readStripeEvent, unreadableEventIdentity } from "./stripe-event";

export type ProcessingResult = "PROCESSED" | "IGNORED" | "FAILED";

/** What a delivery came to, and whether Stripe delivering it again could change that. */
export interface Receipt {
  status: ProcessingResult;
  retryCanHelp: boolean;
}

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

  /**
   * Verifies the signature: what the body holds (not yet read as an event) when Stripe signed
   * it freshly; undefined otherwise.
   */
  verify(rawBody: Buffer, signature: string | undefined): { payload: unknown } | undefined {
    if (!signature) return undefined;
    const { stripe, config } = this.deps.handlerContext;
    try {
      return { payload: stripe.webhooks.constructEvent(rawBody, signature, config.stripe.webhookSecret, config.stripe.webhookToleranceSeconds) as unknown };
    } catch {
      return undefined;
    }
  }

  /**
   * Records a verified delivery and processes it. The same bytes always fail to read the same
   * way, so an unreadable event is not worth a retry; any other failure may pass on a retry
   * (an event it waits for arrives, the plan table is fixed, the service is upgraded).
   */
  async receive(payload: unknown, rawBody: Buffer): Promise<Receipt> {
    const reading = readStripeEvent(payload);
    if (!reading.ok) {
      const identity = unreadableEventIdentity(payload, rawBody);
      await this.deps.store.recordUnreadableEvent(this.deps.database, { ...identity, reason: reading.reason, payload }, this.deps.now());
      this.deps.logger.warn({ eventId: identity.id, type: identity.type, error: reading.reason }, "Stripe event unreadable");
      return { status: "FAILED", retryCanHelp: false };
    }
    await this.deps.store.recordEvent(this.deps.database, reading.event);
    return { status: await this.process(reading.event.id), retryCanHelp: true };
  }

  async process(eventId: string): Promise<ProcessingResult> {
    const stored = await this.deps.store.findEvent(this.deps.database, eventId);
    if (!stored) throw new Error(`event ${eventId} was not recorded`);
    if (stored.status === "PROCESSED" || stored.status === "IGNORED") return stored.status;
    const reading = readStripeEvent(stored.payload);
    if (!reading.ok) {
      await this.deps.store.markFailed(this.deps.database, eventId, reading.reason);
      return "FAILED";
    }
    const event = reading.event;
    const handler = handlerFor(event);
    try {
      const prefetched = handler?.prefetch ? await handler.prefetch(this.deps.handlerContext, event) : undefined;
      const result = await this.deps.transactor.serializable(async (tx) => {
        const locked = await this.deps.store.lockEvent(tx, eventId);
        if (!locked) throw new Error(`event ${eventId} disappeared`);
        if (locked.status === "PROCESSED" || locked.status === "IGNORED") return locked.status;
        const outcome = handler ? await handler.apply(this.deps.handlerContext, tx, event, prefetched) : succeed("IGNORED" as const);
        if (!outcome.ok) throw new EventFailed("message" in outcome.failure && outcome.failure.message ? outcome.failure.message : outcome.failure.code);
        await this.deps.store.markDone(tx, eventId, outcome.value, this.deps.now());
        return outcome.value;
      });
      if (result === "PROCESSED") await this.runEventsWaitingFor(eventId);
      return result;
    } catch (error) {
      // Nothing can be recorded without the database; Stripe's retry brings the event back.
      if (isUnavailable(error)) throw error;
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
