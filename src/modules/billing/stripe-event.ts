// What a signed delivery must hold before any handler reads it: Stripe's event envelope. The
// signature proves who sent the bytes, not that they have the shape this service expects (an
// API version it does not know, a field of another type): such an event is kept, FAILED with
// the reason, for staff to see and replay once the service understands it.
import crypto from "node:crypto";
import type Stripe from "stripe";
import { z } from "zod";

/** Stripe ids and event types fit the inbox's columns (varchar 255). */
const stripeTextMaxLength = 255;
/** Seconds since the epoch, as Stripe's `created`; bounded so that it converts to a timestamp. */
const createdSecondsMax = 253_402_300_799;
const reasonMaxLength = 500;

const envelope = z.looseObject({
  id: z.string().min(1).max(stripeTextMaxLength),
  type: z.string().min(1).max(stripeTextMaxLength),
  created: z.number().int().min(0).max(createdSecondsMax),
  data: z.looseObject({ object: z.looseObject({}) }),
});

export type EventReading = { ok: true; event: Stripe.Event } | { ok: false; reason: string };

/** The event, when its envelope has Stripe's shape; otherwise why not, in a line. */
export function readStripeEvent(payload: unknown): EventReading {
  const parsed = envelope.safeParse(payload);
  if (parsed.success) return { ok: true, event: parsed.data as unknown as Stripe.Event };
  const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "event"}: ${issue.message}`);
  return { ok: false, reason: `unreadable event: ${problems.join("; ")}`.slice(0, reasonMaxLength) };
}

/**
 * The inbox key and type of an event whose envelope could not be read: its own id and type when
 * those are usable, else a key made from the signed bytes (the same delivery, the same key).
 */
export function unreadableEventIdentity(payload: unknown, rawBody: Buffer): { id: string; type: string } {
  const fields = payload !== null && typeof payload === "object" ? (payload as Record<string, unknown>) : {};
  const usable = (value: unknown) => typeof value === "string" && value.length > 0 && value.length <= stripeTextMaxLength;
  const id = usable(fields.id) ? (fields.id as string) : `unreadable_${crypto.createHash("sha256").update(rawBody).digest("hex")}`;
  return { id, type: usable(fields.type) ? (fields.type as string) : "unreadable" };
}
