// Pure arithmetic over one customer's grants. A grant's seconds are always in exactly one place:
// remaining (spendable), held (by ACTIVE reservations), charged, expired or taken back. Every
// operation returns the grants after it and the moves it made, one per grant (itemised), so the
// ledger can name each entry's grant; nothing here reads a clock or a database.
//
// Spending order: soonest expiry first, never-expiring last, older first among equals.
// Expiry: at `expiresAt` whatever remains expires; seconds that come back to an expired grant
// (a release, or a confirmation charging less than held) expire at once.
import { assert, assertSeconds } from "../../platform/assert";
import type { Balance } from "./balance";
import type { LedgerEntryKind } from "./ledger";

export type GrantSource = "SUBSCRIPTION" | "PURCHASE" | "STAFF" | "INITIAL";

export interface Grant {
  id: string;
  seq: bigint;
  source: GrantSource;
  grantedSeconds: number;
  remainingSeconds: number;
  heldSeconds: number;
  chargedSeconds: number;
  expiredSeconds: number;
  takenBackSeconds: number;
  expiresAt: Date | null;
  /** Its expiry has been settled (GRANT_EXPIRED written): nothing remains, returns expire at once. */
  expirySettled: boolean;
  /** Refunded while running jobs held some of it: taken back as those seconds come back unused. */
  pendingTakeBackSeconds: number;
}

/** How many seconds a reservation holds of one grant. */
export interface Hold {
  grantId: string;
  seconds: number;
}

/** One change of one grant's remaining seconds (or, with grantId null, of none). */
export interface GrantMove {
  grantId: string | null;
  kind: LedgerEntryKind;
  deltaSeconds: number;
}

export interface BookChange {
  grants: Grant[];
  moves: GrantMove[];
}

export interface CreditExpiry {
  seconds: number;
  at: Date;
}

function checked<G extends Grant>(grant: G): G {
  for (const part of ["remainingSeconds", "heldSeconds", "chargedSeconds", "expiredSeconds", "takenBackSeconds"] as const) {
    assertSeconds(grant[part], part);
  }
  const placed = grant.remainingSeconds + grant.heldSeconds + grant.chargedSeconds + grant.expiredSeconds + grant.takenBackSeconds;
  assert(placed === grant.grantedSeconds, `grant ${grant.id}: parts sum to ${placed}, granted ${grant.grantedSeconds}`);
  assert(!grant.expirySettled || grant.remainingSeconds === 0, `grant ${grant.id}: settled expiry with seconds remaining`);
  assertSeconds(grant.pendingTakeBackSeconds, "pendingTakeBackSeconds");
  assert(grant.pendingTakeBackSeconds <= grant.heldSeconds, `grant ${grant.id}: more pending take-back than held`);
  return grant;
}

/** Nothing remains or is held, and nothing can come back or expire: the grant is done for good. */
export function isRetired(grant: Grant): boolean {
  return grant.remainingSeconds === 0 && grant.heldSeconds === 0 && (grant.expiresAt === null || grant.expirySettled);
}

const expiryOrder = (grant: Grant) => grant.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;

/** Spending order: soonest expiry first, never-expiring last, older (lower seq) first among equals. */
function bySpendingOrder(a: Grant, b: Grant): number {
  const byExpiry = expiryOrder(a) - expiryOrder(b);
  if (byExpiry !== 0 && !Number.isNaN(byExpiry)) return byExpiry;
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

export function isExpiredAt(grant: Pick<Grant, "expiresAt">, now: Date): boolean {
  return grant.expiresAt !== null && grant.expiresAt.getTime() <= now.getTime();
}

/** The balance the grants make: what remains of them, and what reservations hold of them. */
export function balanceOf(grants: readonly Grant[]): Balance {
  return {
    secondsRemaining: grants.reduce((sum, grant) => sum + grant.remainingSeconds, 0),
    secondsReserved: grants.reduce((sum, grant) => sum + grant.heldSeconds, 0),
  };
}

/** The soonest expiry among grants with seconds remaining, with all that expires at that instant. */
export function nextExpiry(grants: readonly { remainingSeconds: number; expiresAt: Date | null }[], now: Date): CreditExpiry | null {
  const expiring = grants.filter((grant) => grant.remainingSeconds > 0 && grant.expiresAt !== null && !isExpiredAt(grant, now));
  if (expiring.length === 0) return null;
  const at = Math.min(...expiring.map((grant) => grant.expiresAt!.getTime()));
  const seconds = expiring.filter((grant) => grant.expiresAt!.getTime() === at).reduce((sum, grant) => sum + grant.remainingSeconds, 0);
  return { seconds, at: new Date(at) };
}

/** Settles every grant whose expiry has come: what remains of it expires (one GRANT_EXPIRED each). */
export function expireDue<G extends Grant>(grants: readonly G[], now: Date): { grants: G[]; moves: GrantMove[] } {
  const moves: GrantMove[] = [];
  const after = grants.map((grant) => {
    if (grant.expirySettled || !isExpiredAt(grant, now)) return grant;
    if (grant.remainingSeconds > 0) moves.push({ grantId: grant.id, kind: "GRANT_EXPIRED", deltaSeconds: -grant.remainingSeconds });
    return checked({ ...grant, expiredSeconds: grant.expiredSeconds + grant.remainingSeconds, remainingSeconds: 0, expirySettled: true });
  });
  return { grants: after, moves };
}

function assertSettled(grants: readonly Grant[], now: Date): void {
  for (const grant of grants) assert(grant.expirySettled || !isExpiredAt(grant, now), `grant ${grant.id}: expireDue must run first`);
}

/** Grants that can be spent now, in spending order. */
function spendable(grants: readonly Grant[]): Grant[] {
  return grants.filter((grant) => !grant.expirySettled && grant.remainingSeconds > 0).sort(bySpendingOrder);
}

function replace(grants: readonly Grant[], changed: Map<string, Grant>): Grant[] {
  return grants.map((grant) => changed.get(grant.id) ?? grant);
}

/**
 * Takes up to `seconds` from remaining in spending order, as far as it goes, each grant's share
 * moved by `take`. Callers that need all or nothing check `spendableSeconds` first.
 */
function takeInOrder(
  grants: readonly Grant[],
  seconds: number,
  take: (grant: Grant, seconds: number) => Grant,
): { changed: Map<string, Grant>; taken: Hold[] } {
  const changed = new Map<string, Grant>();
  const taken: Hold[] = [];
  let left = seconds;
  for (const grant of spendable(grants)) {
    if (left === 0) break;
    const share = Math.min(left, grant.remainingSeconds);
    changed.set(grant.id, checked(take(grant, share)));
    taken.push({ grantId: grant.id, seconds: share });
    left -= share;
  }
  return { changed, taken };
}

const spendableSeconds = (grants: readonly Grant[]) => spendable(grants).reduce((sum, grant) => sum + grant.remainingSeconds, 0);

/** A reservation of `seconds`: held from grants in spending order, or undefined when they cannot cover it. */
export function hold(grants: readonly Grant[], seconds: number, now: Date): (BookChange & { holds: Hold[] }) | undefined {
  assert(Number.isSafeInteger(seconds) && seconds > 0, "reserved seconds must be positive");
  assertSettled(grants, now);
  if (spendableSeconds(grants) < seconds) return undefined;
  const { changed, taken } = takeInOrder(grants, seconds, (grant, share) => ({
    ...grant,
    remainingSeconds: grant.remainingSeconds - share,
    heldSeconds: grant.heldSeconds + share,
  }));
  const moves = taken.map((held): GrantMove => ({ grantId: held.grantId, kind: "RESERVE", deltaSeconds: -held.seconds }));
  return { grants: replace(grants, changed), moves, holds: taken };
}

function findGrant(grants: readonly Grant[], grantId: string): Grant {
  const grant = grants.find((candidate) => candidate.id === grantId);
  assert(grant !== undefined, `grant ${grantId} of a hold was not loaded`);
  return grant;
}

/**
 * Returns held seconds to their grant: remaining again, or expired at once when the grant's
 * expiry is settled; a refund still pending on the grant takes them back first. The moves:
 * the return (kind), then its expiry or take-back.
 */
function giveBack(grant: Grant, seconds: number, kind: LedgerEntryKind): { grant: Grant; moves: GrantMove[] } {
  assert(seconds <= grant.heldSeconds, `grant ${grant.id}: gave back more than it holds`);
  const heldSeconds = grant.heldSeconds - seconds;
  const returned: GrantMove = { grantId: grant.id, kind, deltaSeconds: seconds };
  if (grant.expirySettled) {
    return {
      grant: checked({ ...grant, heldSeconds, expiredSeconds: grant.expiredSeconds + seconds, pendingTakeBackSeconds: Math.min(grant.pendingTakeBackSeconds, heldSeconds) }),
      moves: [returned, { grantId: grant.id, kind: "GRANT_EXPIRED", deltaSeconds: -seconds }],
    };
  }
  const takenBack = Math.min(seconds, grant.pendingTakeBackSeconds);
  const after = checked({
    ...grant,
    heldSeconds,
    remainingSeconds: grant.remainingSeconds + seconds - takenBack,
    takenBackSeconds: grant.takenBackSeconds + takenBack,
    pendingTakeBackSeconds: Math.min(grant.pendingTakeBackSeconds - takenBack, heldSeconds),
  });
  return { grant: after, moves: takenBack > 0 ? [returned, { grantId: grant.id, kind: "REFUND", deltaSeconds: -takenBack }] : [returned] };
}

/** Release or expiry of a reservation: every held second goes back to its grant (in spending order). */
export function release(grants: readonly Grant[], holds: readonly Hold[], kind: "RELEASE" | "EXPIRE", now: Date): BookChange {
  assertSettled(grants, now);
  const changed = new Map<string, Grant>();
  const moves: GrantMove[] = [];
  const ordered = [...holds].sort((a, b) => bySpendingOrder(findGrant(grants, a.grantId), findGrant(grants, b.grantId)));
  for (const held of ordered) {
    const back = giveBack(changed.get(held.grantId) ?? findGrant(grants, held.grantId), held.seconds, kind);
    changed.set(held.grantId, back.grant);
    moves.push(...back.moves);
  }
  return { grants: replace(grants, changed), moves };
}

export interface Confirmation extends BookChange {
  chargedSeconds: number;
  unbilledSeconds: number;
}

/**
 * Confirmation charges `actualSeconds`: from the held grants in spending order, the rest of
 * what was held going back to its grants; beyond what was held, from remaining grants in
 * spending order as far as they go, and what they cannot cover is unbilled. At least one move
 * (a CONFIRM of zero when nothing changed), naming the grant when exactly one was held.
 */
export function confirm(grants: readonly Grant[], holds: readonly Hold[], actualSeconds: number, now: Date): Confirmation {
  assertSeconds(actualSeconds, "actualSeconds");
  assertSettled(grants, now);
  const held = holds.map((entry) => ({ grant: findGrant(grants, entry.grantId), seconds: entry.seconds }));
  held.sort((a, b) => bySpendingOrder(a.grant, b.grant));
  const heldSeconds = held.reduce((sum, entry) => sum + entry.seconds, 0);
  const changed = new Map<string, Grant>();
  const moves: GrantMove[] = [];
  let toCharge = Math.min(actualSeconds, heldSeconds);
  for (const entry of held) {
    const charged = Math.min(toCharge, entry.seconds);
    toCharge -= charged;
    // Seconds the job used are spent: a refund still pending can no longer take them back.
    const heldAfterCharge = entry.grant.heldSeconds - charged;
    const grant = {
      ...entry.grant,
      heldSeconds: heldAfterCharge,
      chargedSeconds: entry.grant.chargedSeconds + charged,
      pendingTakeBackSeconds: Math.min(entry.grant.pendingTakeBackSeconds, heldAfterCharge),
    };
    const returned = entry.seconds - charged;
    if (returned === 0) {
      changed.set(grant.id, checked(grant));
      continue;
    }
    const back = giveBack(grant, returned, "CONFIRM");
    changed.set(grant.id, back.grant);
    moves.push(...back.moves);
  }
  const afterHolds = replace(grants, changed);
  const extraSeconds = Math.max(0, actualSeconds - heldSeconds);
  const { changed: extra, taken } = takeInOrder(afterHolds, extraSeconds, (grant, share) => ({
    ...grant,
    remainingSeconds: grant.remainingSeconds - share,
    chargedSeconds: grant.chargedSeconds + share,
  }));
  moves.push(...taken.map((entry): GrantMove => ({ grantId: entry.grantId, kind: "CONFIRM", deltaSeconds: -entry.seconds })));
  const takenSeconds = taken.reduce((sum, entry) => sum + entry.seconds, 0);
  if (moves.length === 0) moves.push({ grantId: holds.length === 1 ? holds[0]!.grantId : null, kind: "CONFIRM", deltaSeconds: 0 });
  return {
    grants: replace(afterHolds, extra),
    moves,
    chargedSeconds: Math.min(actualSeconds, heldSeconds) + takenSeconds,
    unbilledSeconds: extraSeconds - takenSeconds,
  };
}

/** A negative staff adjustment: `seconds` taken back in spending order, all or nothing. */
export function deduct(grants: readonly Grant[], seconds: number, now: Date): BookChange | undefined {
  assert(Number.isSafeInteger(seconds) && seconds > 0, "deducted seconds must be positive");
  assertSettled(grants, now);
  if (spendableSeconds(grants) < seconds) return undefined;
  const { changed, taken } = takeInOrder(grants, seconds, takeBackShare);
  return { grants: replace(grants, changed), moves: taken.map((entry) => ({ grantId: entry.grantId, kind: "ADJUSTMENT", deltaSeconds: -entry.seconds })) };
}

/**
 * A refund: up to `seconds` taken back from the named grants only. What remains of them is taken
 * now; the rest, as far as running jobs hold it, becomes pending and is taken back as the jobs
 * give it back unused (never what they used: that is spent).
 */
export function takeBackFrom(
  grants: readonly Grant[],
  grantIds: ReadonlySet<string>,
  seconds: number,
  now: Date,
): BookChange & { takenSeconds: number; pendingSeconds: number } {
  assertSeconds(seconds, "seconds");
  assertSettled(grants, now);
  const own = grants.filter((grant) => grantIds.has(grant.id));
  const { changed, taken } = takeInOrder(own, seconds, takeBackShare);
  const takenSeconds = taken.reduce((sum, entry) => sum + entry.seconds, 0);
  let shortfall = seconds - takenSeconds;
  for (const grant of [...own].sort(bySpendingOrder)) {
    if (shortfall === 0) break;
    const current = changed.get(grant.id) ?? grant;
    const pending = Math.min(shortfall, current.heldSeconds - current.pendingTakeBackSeconds);
    if (pending <= 0 || current.expirySettled) continue;
    changed.set(grant.id, checked({ ...current, pendingTakeBackSeconds: current.pendingTakeBackSeconds + pending }));
    shortfall -= pending;
  }
  return {
    grants: replace(grants, changed),
    moves: taken.map((entry) => ({ grantId: entry.grantId, kind: "REFUND", deltaSeconds: -entry.seconds })),
    takenSeconds,
    pendingSeconds: seconds - takenSeconds - shortfall,
  };
}

function takeBackShare(grant: Grant, share: number): Grant {
  return { ...grant, remainingSeconds: grant.remainingSeconds - share, takenBackSeconds: grant.takenBackSeconds + share };
}

/** The grants that differ from before (by identity: operations copy what they change). */
export function changedGrants(before: readonly Grant[], after: readonly Grant[]): Grant[] {
  const original = new Set(before);
  return after.filter((grant) => !original.has(grant));
}

/**
 * A grant as readers see it at `now`, before the sweeper: `returningSeconds` held by ACTIVE
 * reservations past their expiry are back already, and past its own expiry what remains has
 * expired.
 */
export function presentGrant<G extends Grant>(grant: G, returningSeconds: number, now: Date): G {
  assert(returningSeconds <= grant.heldSeconds, `grant ${grant.id}: more returning than held`);
  const heldSeconds = grant.heldSeconds - returningSeconds;
  if (grant.expirySettled) return { ...grant, heldSeconds, expiredSeconds: grant.expiredSeconds + returningSeconds };
  const remainingSeconds = grant.remainingSeconds + returningSeconds;
  if (!isExpiredAt(grant, now)) return { ...grant, heldSeconds, remainingSeconds };
  return { ...grant, heldSeconds, remainingSeconds: 0, expiredSeconds: grant.expiredSeconds + remainingSeconds, expirySettled: true };
}
