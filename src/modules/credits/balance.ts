// Pure arithmetic of a customer's balance as a whole: its bound and its low-balance alert. What
// moves between grants, reservations and the ledger is grant-book.ts.
import { assert } from "../../platform/assert";

export interface Balance {
  /** Seconds that can be reserved now. */
  secondsRemaining: number;
  /** Seconds held by ACTIVE reservations. */
  secondsReserved: number;
}

/** A balance as clients get it: whose it is, so its next expiry can be read. */
export interface CustomerBalance extends Balance {
  customerId: string;
}

export const secondsPerHour = 3600;

export function hoursFromSeconds(seconds: number): number {
  return seconds / secondsPerHour;
}

/** Whether `seconds` more fit under the configured maximum of what a customer owns (remaining + reserved). */
export function fitsBalanceMax(balance: Balance, seconds: number, balanceMaxSeconds: number): boolean {
  assert(Number.isSafeInteger(seconds) && seconds > 0, "granted seconds must be positive");
  return balance.secondsRemaining + balance.secondsReserved + seconds <= balanceMaxSeconds;
}

/** A customer's low-balance alert: the threshold (null: off) and whether it may fire. */
export interface LowBalanceAlert {
  thresholdSeconds: number | null;
  armed: boolean;
}

/**
 * The alert after the balance became `secondsRemaining`: it fires once when the balance falls
 * below the threshold, and is armed again when the balance is back at the threshold or above.
 */
export function nextLowBalanceAlert(alert: LowBalanceAlert, secondsRemaining: number): { alert: LowBalanceAlert; fire: boolean } {
  const { thresholdSeconds, armed } = alert;
  if (thresholdSeconds === null) return { alert: { thresholdSeconds, armed: true }, fire: false };
  if (armed && secondsRemaining < thresholdSeconds) return { alert: { thresholdSeconds, armed: false }, fire: true };
  if (!armed && secondsRemaining >= thresholdSeconds) return { alert: { thresholdSeconds, armed: true }, fire: false };
  return { alert, fire: false };
}

/** A threshold set now: not armed while the balance is already below it (no email for the past). */
export function newLowBalanceAlert(thresholdSeconds: number | null, secondsRemaining: number): LowBalanceAlert {
  return { thresholdSeconds, armed: thresholdSeconds === null || secondsRemaining >= thresholdSeconds };
}
