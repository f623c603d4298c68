// The billing module's only door to the database: the Stripe event inbox, payment effects
// and subscriptions.
import type Stripe from "stripe";
import { z } from "zod";
import { Prisma } from "../../generated/prisma/client";
import type { DatabaseClient, Transaction } from "../../platform/database";
import { column, selectRow, selectRows, execute } from "../../platform/rows";

/**
 * JSON text that jsonb accepts: jsonb refuses the character U+0000 (`\u0000`), which a signed
 * payload may hold in a string; it is kept as U+FFFD, the rest of the event as sent.
 */
function jsonbText(value: unknown): string {
  return JSON.stringify(value).replace(/(?<!\\)((?:\\\\)*)\\u0000/g, "$1\\ufffd");
}

export type StripeEventStatus = "RECEIVED" | "PROCESSED" | "IGNORED" | "FAILED";

export interface StripeEventRecord {
  id: string;
  type: string;
  stripeCreated: Date;
  status: StripeEventStatus;
  attempts: number;
  lastError: string | null;
  /** What Stripe sent, as it was: read with readStripeEvent before use. */
  payload: unknown;
  receivedAt: Date;
  processedAt: Date | null;
}

export interface NewPaymentEffect {
  key: string;
  customerId: string;
  eventId: string;
  grantedSeconds: number;
  stripePaymentIntentId: string | null;
  stripeChargeId: string | null;
}

export interface PaymentEffectRecord extends NewPaymentEffect {
  createdAt: Date;
}

const eventRow = z
  .object({
    id: column.text,
    type: column.text,
    stripe_created: column.timestamp,
    status: z.enum(["RECEIVED", "PROCESSED", "IGNORED", "FAILED"]),
    attempts: column.int,
    last_error: column.text.nullable(),
    payload: z.unknown(),
    received_at: column.timestamp,
    processed_at: column.timestamp.nullable(),
  })
  .transform(
    (row): StripeEventRecord => ({
      id: row.id,
      type: row.type,
      stripeCreated: row.stripe_created,
      status: row.status,
      attempts: row.attempts,
      lastError: row.last_error,
      payload: row.payload,
      receivedAt: row.received_at,
      processedAt: row.processed_at,
    }),
  );

const effectRow = z
  .object({
    key: column.text,
    customer_id: column.uuid,
    event_id: column.text,
    granted_seconds: column.int,
    stripe_payment_intent_id: column.text.nullable(),
    stripe_charge_id: column.text.nullable(),
    created_at: column.timestamp,
  })
  .transform(
    (row): PaymentEffectRecord => ({
      key: row.key,
      customerId: row.customer_id,
      eventId: row.event_id,
      grantedSeconds: row.granted_seconds,
      stripePaymentIntentId: row.stripe_payment_intent_id,
      stripeChargeId: row.stripe_charge_id,
      createdAt: row.created_at,
    }),
  );

const eventColumns = Prisma.sql`id, type, stripe_created, status::text AS status, attempts, last_error, payload, received_at, processed_at`;
const effectColumns = Prisma.sql`key, customer_id, event_id, granted_seconds, stripe_payment_intent_id, stripe_charge_id, created_at`;
const idRow = z.object({ id: column.text }).transform((row) => row.id);
const typeStatusCountRow = z.object({ type: column.text, status: column.text, count: column.int });
const subscriptionRow = z
  .object({ status: column.text, last_event_created: column.timestamp })
  .transform((row) => ({ status: row.status, lastEventCreated: row.last_event_created }));

const errorMaxLength = 2000;

export class BillingStore {
  /** Records a verified event once; a repeated delivery changes nothing. */
  async recordEvent(db: DatabaseClient, event: Stripe.Event): Promise<void> {
    await execute(db, "billing.recordEvent", Prisma.sql`
      INSERT INTO stripe_event (id, type, stripe_created, payload)
      VALUES (${event.id}, ${event.type}, ${new Date(event.created * 1000)}, ${jsonbText(event)}::jsonb)
      ON CONFLICT (id) DO NOTHING`);
  }

  /** An event whose envelope could not be read: kept, FAILED with the reason. */
  async recordUnreadableEvent(db: DatabaseClient, event: { id: string; type: string; reason: string; payload: unknown }, now: Date): Promise<void> {
    await execute(db, "billing.recordUnreadableEvent", Prisma.sql`
      INSERT INTO stripe_event (id, type, stripe_created, status, attempts, last_error, payload)
      VALUES (${event.id}, ${event.type}, ${now}, 'FAILED', 1, ${event.reason}, ${jsonbText(event.payload)}::jsonb)
      ON CONFLICT (id) DO NOTHING`);
  }

  async findEvent(db: DatabaseClient, eventId: string): Promise<StripeEventRecord | undefined> {
    return selectRow(db, "billing.findEvent", eventRow, Prisma.sql`SELECT ${eventColumns} FROM stripe_event WHERE id = ${eventId}`);
  }

  /** Locks the event for the rest of the transaction: concurrent deliveries wait, then see it done. */
  async lockEvent(tx: Transaction, eventId: string): Promise<StripeEventRecord | undefined> {
    await selectRows(tx, "billing.lockEvent", idRow, Prisma.sql`SELECT id FROM stripe_event WHERE id = ${eventId} FOR UPDATE`);
    return this.findEvent(tx, eventId);
  }

  async markDone(tx: Transaction, eventId: string, status: "PROCESSED" | "IGNORED", now: Date): Promise<void> {
    await execute(tx, "billing.markDone", Prisma.sql`
      UPDATE stripe_event SET status = ${status}::"StripeEventStatus", processed_at = ${now}, attempts = attempts + 1, last_error = NULL
      WHERE id = ${eventId}`);
  }

  async markFailed(db: DatabaseClient, eventId: string, error: string): Promise<void> {
    await execute(db, "billing.markFailed", Prisma.sql`
      UPDATE stripe_event SET status = 'FAILED', attempts = attempts + 1, last_error = ${error.slice(0, errorMaxLength)}
      WHERE id = ${eventId} AND status NOT IN ('PROCESSED', 'IGNORED')`);
  }

  async recentEvents(db: DatabaseClient, status: StripeEventStatus | undefined, limit: number): Promise<StripeEventRecord[]> {
    return selectRows(db, "billing.recentEvents", eventRow, Prisma.sql`
      SELECT ${eventColumns}
      FROM stripe_event WHERE (${status ?? null}::text IS NULL OR status::text = ${status ?? null}::text)
      ORDER BY received_at DESC, id LIMIT ${limit}`);
  }

  async countByTypeAndStatus(db: DatabaseClient): Promise<{ type: string; status: string; count: number }[]> {
    return selectRows(db, "billing.countByTypeAndStatus", typeStatusCountRow, Prisma.sql`
      SELECT type, status::text AS status, count(*)::int AS count FROM stripe_event GROUP BY type, status`);
  }

  async findEffect(tx: Transaction, key: string): Promise<PaymentEffectRecord | undefined> {
    return selectRow(tx, "billing.findEffect", effectRow, Prisma.sql`SELECT ${effectColumns} FROM payment_effect WHERE key = ${key}`);
  }

  async insertEffect(tx: Transaction, effect: NewPaymentEffect): Promise<void> {
    await execute(tx, "billing.insertEffect", Prisma.sql`
      INSERT INTO payment_effect (key, customer_id, event_id, granted_seconds, stripe_payment_intent_id, stripe_charge_id)
      VALUES (${effect.key}, ${effect.customerId}::uuid, ${effect.eventId}, ${effect.grantedSeconds},
              ${effect.stripePaymentIntentId}, ${effect.stripeChargeId})`);
  }

  /** Effects of a payment, found by its PaymentIntent or its charge. */
  async effectsOfPayment(tx: Transaction, paymentIntentId: string | null, chargeId: string | null): Promise<PaymentEffectRecord[]> {
    return selectRows(tx, "billing.effectsOfPayment", effectRow, Prisma.sql`
      SELECT ${effectColumns} FROM payment_effect
      WHERE (stripe_payment_intent_id IS NOT NULL AND stripe_payment_intent_id = ${paymentIntentId})
         OR (stripe_charge_id IS NOT NULL AND stripe_charge_id = ${chargeId})
      ORDER BY created_at`);
  }

  /**
   * Refunds and disputes that failed while waiting for a purchase that this event has now
   * applied (its payment intents), oldest first by Stripe's `created`.
   */
  async eventsWaitingForPaymentsOf(db: DatabaseClient, eventId: string, types: string[]): Promise<string[]> {
    return selectRows(db, "billing.eventsWaitingForPaymentsOf", idRow, Prisma.sql`
      SELECT e.id FROM stripe_event e
      WHERE e.status = 'FAILED' AND e.type = ANY(${types}::text[])
        AND e.payload->'data'->'object'->>'payment_intent' IN (
          SELECT stripe_payment_intent_id FROM payment_effect WHERE event_id = ${eventId} AND stripe_payment_intent_id IS NOT NULL)
      ORDER BY e.stripe_created, e.received_at`);
  }

  /** The subscription's stored state, locked for this transaction. */
  async lockSubscription(tx: Transaction, subscriptionId: string): Promise<{ status: string; lastEventCreated: Date } | undefined> {
    return selectRow(tx, "billing.lockSubscription", subscriptionRow, Prisma.sql`
      SELECT status, last_event_created FROM stripe_subscription WHERE id = ${subscriptionId} FOR UPDATE`);
  }

  async saveSubscription(
    tx: Transaction,
    subscription: { id: string; customerId: string; status: string; priceId: string | null; eventCreated: Date },
  ): Promise<void> {
    await execute(tx, "billing.saveSubscription", Prisma.sql`
      INSERT INTO stripe_subscription (id, customer_id, status, price_id, last_event_created, updated_at)
      VALUES (${subscription.id}, ${subscription.customerId}::uuid, ${subscription.status}, ${subscription.priceId},
              ${subscription.eventCreated}, now())
      ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, price_id = EXCLUDED.price_id,
        last_event_created = EXCLUDED.last_event_created, updated_at = now()`);
  }
}
