// How many seconds a refund takes back: the refunded share of what the payment granted.

export interface RefundState {
  /** Seconds the refunded payment granted. */
  grantedSeconds: number;
  /** The charge's amount and the running total refunded, in the currency's smallest unit. */
  chargeAmount: number;
  amountRefunded: number;
  /** Seconds earlier refunds of this charge already took back. */
  takenBackSeconds: number;
}

/**
 * charge.refunded repeats for each partial refund with the running total: what is due now is
 * the refunded share of the grant, rounded down, less what was already taken back; never
 * negative. A charge of 0 refunded counts as fully refunded.
 */
export function refundDueSeconds(state: RefundState): number {
  const refundedFraction = state.chargeAmount > 0 ? Math.min(1, state.amountRefunded / state.chargeAmount) : 1;
  const owedSeconds = Math.floor(state.grantedSeconds * refundedFraction);
  return Math.max(0, owedSeconds - state.takenBackSeconds);
}
