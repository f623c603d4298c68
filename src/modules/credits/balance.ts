// Pure balance arithmetic. A reservation is a hold: reserving moves seconds from remaining to
// reserved; settling takes them out of reserved and returns to remaining what was not charged.
// Nothing here ever produces a negative number; the asserts make a caller's bug loud.
import { assert, assertSeconds } from "../../platform/assert";

export interface Balance {
  /** Seconds that can be reserved now. */
  secondsRemaining: number;
  /** Seconds held by ACTIVE reservations. */
  secondsReserved: number;
}

export const secondsPerHour = 3600;

export function hoursFromSeconds(seconds: number): number {
  return seconds / secondsPerHour;
}

function checked(balance: Balance): Balance {
  assertSeconds(balance.secondsRemaining, "secondsRemaining");
  assertSeconds(balance.secondsReserved, "secondsReserved");
  return balance;
}

/** The balance after holding `reservedSeconds`, or undefined when remaining cannot cover it. */
export function reserve(balance: Balance, reservedSeconds: number): Balance | undefined {
  assert(Number.isSafeInteger(reservedSeconds) && reservedSeconds > 0, "reservedSeconds must be positive");
  if (reservedSeconds > balance.secondsRemaining) return undefined;
  return checked({
    secondsRemaining: balance.secondsRemaining - reservedSeconds,
    secondsReserved: balance.secondsReserved + reservedSeconds,
  });
}

/** Release and expiry: every reserved second goes back to remaining. */
export function release(balance: Balance, reservedSeconds: number): Balance {
  assert(reservedSeconds > 0 && reservedSeconds <= balance.secondsReserved, "released more than is reserved");
  return checked({
    secondsRemaining: balance.secondsRemaining + reservedSeconds,
    secondsReserved: balance.secondsReserved - reservedSeconds,
  });
}

export interface Settlement {
  balance: Balance;
  /** Signed change of secondsRemaining: the refund, or minus the extra taken. */
  deltaSeconds: number;
  chargedSeconds: number;
  unbilledSeconds: number;
}

/**
 * Confirmation charges `actualSeconds`. Less than reserved: the rest is refunded. More: the
 * extra is taken from remaining as far as it goes; what it cannot cover is unbilled.
 */
export function confirm(balance: Balance, reservedSeconds: number, actualSeconds: number): Settlement {
  assertSeconds(actualSeconds, "actualSeconds");
  assert(reservedSeconds > 0 && reservedSeconds <= balance.secondsReserved, "confirmed more than is reserved");
  const secondsReserved = balance.secondsReserved - reservedSeconds;
  if (actualSeconds <= reservedSeconds) {
    const refundSeconds = reservedSeconds - actualSeconds;
    return {
      balance: checked({ secondsRemaining: balance.secondsRemaining + refundSeconds, secondsReserved }),
      deltaSeconds: refundSeconds,
      chargedSeconds: actualSeconds,
      unbilledSeconds: 0,
    };
  }
  const extraSeconds = actualSeconds - reservedSeconds;
  const takenSeconds = Math.min(extraSeconds, balance.secondsRemaining);
  return {
    balance: checked({ secondsRemaining: balance.secondsRemaining - takenSeconds, secondsReserved }),
    deltaSeconds: -takenSeconds,
    chargedSeconds: reservedSeconds + takenSeconds,
    unbilledSeconds: extraSeconds - takenSeconds,
  };
}

export type AdjustmentResult =
  | { ok: true; balance: Balance }
  | { ok: false; reason: "insufficient" | "above-maximum" };

/** Staff grants and deductions: never below zero, never above the configured maximum. */
export function adjust(balance: Balance, deltaSeconds: number, balanceMaxSeconds: number): AdjustmentResult {
  assert(Number.isSafeInteger(deltaSeconds) && deltaSeconds !== 0, "deltaSeconds must be a non-zero integer");
  const secondsRemaining = balance.secondsRemaining + deltaSeconds;
  if (secondsRemaining < 0) return { ok: false, reason: "insufficient" };
  if (secondsRemaining + balance.secondsReserved > balanceMaxSeconds) return { ok: false, reason: "above-maximum" };
  return { ok: true, balance: checked({ secondsRemaining, secondsReserved: balance.secondsReserved }) };
}

/** Takes back up to `seconds` (a refund of a payment): as far as remaining goes, never below zero. */
export function takeBack(balance: Balance, seconds: number): { balance: Balance; takenSeconds: number } {
  assertSeconds(seconds, "seconds");
  const takenSeconds = Math.min(seconds, balance.secondsRemaining);
  return {
    balance: checked({ secondsRemaining: balance.secondsRemaining - takenSeconds, secondsReserved: balance.secondsReserved }),
    takenSeconds,
  };
}

/** A customer's low-balance alert: the threshold (null: off) and whether it may fire. */
export interface LowBalanceAlert {
  thresholdSeconds: number | null;
  armed: boolean;
}

/**
 * The alert after the balance became `secondsRemaining`: it fires once when the balance falls
 * below the threshold, and is armed again only when the balance rises above it.
 */
export function nextLowBalanceAlert(alert: LowBalanceAlert, secondsRemaining: number): { alert: LowBalanceAlert; fire: boolean } {
  const { thresholdSeconds, armed } = alert;
  if (thresholdSeconds === null) return { alert: { thresholdSeconds, armed: true }, fire: false };
  if (armed && secondsRemaining < thresholdSeconds) return { alert: { thresholdSeconds, armed: false }, fire: true };
  if (!armed && secondsRemaining > thresholdSeconds) return { alert: { thresholdSeconds, armed: true }, fire: false };
  return { alert, fire: false };
}

/** A threshold set now: not armed while the balance is already below it (no email for the past). */
export function newLowBalanceAlert(thresholdSeconds: number | null, secondsRemaining: number): LowBalanceAlert {
  return { thresholdSeconds, armed: thresholdSeconds === null || secondsRemaining >= thresholdSeconds };
}
