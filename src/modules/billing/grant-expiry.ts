// When the seconds a payment grants expire (pure). A subscription period's hours expire at the
// end of the period the invoice paid for, plus SUBSCRIPTION_GRACE_SECONDS, plus
// SUBSCRIPTION_ROLLOVER_MAX_PERIODS more periods of the same length: with rollover N, unused
// hours stay spendable through the N following periods (and are spent before the newer
// periods' hours, which expire later). An hour pack's expire PURCHASE_GRANT_TTL_DAYS after the
// payment, or never with 0.
import { assert } from "../../platform/assert";

const millisecondsPerSecond = 1000;
const millisecondsPerDay = 86_400_000;

export interface PaidPeriod {
  /** Unix seconds, as Stripe writes them. */
  startSeconds: number;
  endSeconds: number;
}

export function subscriptionGrantExpiresAt(period: PaidPeriod, graceSeconds: number, rolloverPeriods: number): Date {
  assert(period.endSeconds >= period.startSeconds, "a period ends after it starts");
  const lengthSeconds = period.endSeconds - period.startSeconds;
  return new Date((period.endSeconds + graceSeconds + rolloverPeriods * lengthSeconds) * millisecondsPerSecond);
}

export function purchaseGrantExpiresAt(paidAt: Date, ttlDays: number): Date | null {
  return ttlDays === 0 ? null : new Date(paidAt.getTime() + ttlDays * millisecondsPerDay);
}
