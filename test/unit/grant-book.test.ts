import { balanceOf, confirm, deduct, expireDue, hold, isRetired, nextExpiry, presentGrant, release, takeBackFrom, type Grant } from "../../src/modules/credits/grant-book";

const now = new Date("2026-11-27T12:00:00Z");
const inDays = (days: number) => new Date(now.getTime() + days * 86_400_000);

let seq = 0n;
function grant(id: string, remainingSeconds: number, expiresAt: Date | null = null, extra: Partial<Grant> = {}): Grant {
  seq += 1n;
  const parts = { heldSeconds: 0, chargedSeconds: 0, expiredSeconds: 0, takenBackSeconds: 0, pendingTakeBackSeconds: 0, ...extra };
  const grantedSeconds = remainingSeconds + parts.heldSeconds + parts.chargedSeconds + parts.expiredSeconds + parts.takenBackSeconds;
  return { id, seq, source: "STAFF", grantedSeconds, remainingSeconds, expiresAt, expirySettled: false, ...parts };
}

const byId = (grants: Grant[]) => Object.fromEntries(grants.map((g) => [g.id, { remaining: g.remainingSeconds, held: g.heldSeconds, charged: g.chargedSeconds, expired: g.expiredSeconds, takenBack: g.takenBackSeconds }]));

describe("hold (reserve)", () => {
  it("spends soonest-expiring first, never-expiring last, older first among equals", () => {
    const grants = [grant("never-old", 100), grant("later", 100, inDays(30)), grant("sooner", 100, inDays(2)), grant("never-new", 100)];
    const held = hold(grants, 250, now)!;
    expect(held.holds).toEqual([
      { grantId: "sooner", seconds: 100 },
      { grantId: "later", seconds: 100 },
      { grantId: "never-old", seconds: 50 },
    ]);
    expect(held.moves).toEqual([
      { grantId: "sooner", kind: "RESERVE", deltaSeconds: -100 },
      { grantId: "later", kind: "RESERVE", deltaSeconds: -100 },
      { grantId: "never-old", kind: "RESERVE", deltaSeconds: -50 },
    ]);
    expect(balanceOf(held.grants)).toEqual({ secondsRemaining: 150, secondsReserved: 250 });
  });
  it("refuses more than the grants have, and may take them to exactly zero", () => {
    expect(hold([grant("a", 100), grant("b", 59)], 160, now)).toBeUndefined();
    expect(balanceOf(hold([grant("a", 100), grant("b", 60)], 160, now)!.grants)).toEqual({ secondsRemaining: 0, secondsReserved: 160 });
  });
  it("rejects a non-positive or fractional amount as a bug, and grants whose expiry is not settled", () => {
    expect(() => hold([grant("a", 10)], 0, now)).toThrow();
    expect(() => hold([grant("a", 10)], 1.5, now)).toThrow();
    expect(() => hold([grant("a", 10, inDays(-1))], 5, now)).toThrow("expireDue must run first");
  });
});

describe("confirm", () => {
  const reserved = () => hold([grant("soon", 300, inDays(1)), grant("never", 400)], 600, now)!;

  it("charges the soonest-expiring held seconds first and returns the rest to their grants", () => {
    const { grants, holds } = reserved();
    const confirmed = confirm(grants, holds, 450, now);
    expect(byId(confirmed.grants)).toEqual({
      soon: { remaining: 0, held: 0, charged: 300, expired: 0, takenBack: 0 },
      never: { remaining: 250, held: 0, charged: 150, expired: 0, takenBack: 0 },
    });
    expect(confirmed.moves).toEqual([{ grantId: "never", kind: "CONFIRM", deltaSeconds: 150 }]);
    expect(confirmed).toMatchObject({ chargedSeconds: 450, unbilledSeconds: 0 });
  });
  it("charges exactly the reservation with one zero entry", () => {
    const single = hold([grant("only", 600)], 600, now)!;
    expect(confirm(single.grants, single.holds, 600, now).moves).toEqual([{ grantId: "only", kind: "CONFIRM", deltaSeconds: 0 }]);
    const { grants, holds } = reserved();
    expect(confirm(grants, holds, 600, now).moves).toEqual([{ grantId: null, kind: "CONFIRM", deltaSeconds: 0 }]);
  });
  it("takes the extra from remaining grants in spending order, clamped, the rest unbilled", () => {
    const { grants, holds } = reserved();
    const confirmed = confirm(grants, holds, 800, now);
    expect(confirmed.moves).toEqual([{ grantId: "never", kind: "CONFIRM", deltaSeconds: -100 }]);
    expect(confirmed).toMatchObject({ chargedSeconds: 700, unbilledSeconds: 100 });
    expect(balanceOf(confirmed.grants)).toEqual({ secondsRemaining: 0, secondsReserved: 0 });
  });
  it("returns seconds to a grant that expired meanwhile as expired at once", () => {
    const { grants, holds } = reserved();
    const later = new Date(inDays(2));
    const expired = expireDue(grants, later);
    expect(expired.moves).toEqual([]);
    const confirmed = confirm(expired.grants, holds, 100, later);
    expect(byId(confirmed.grants).soon).toEqual({ remaining: 0, held: 0, charged: 100, expired: 200, takenBack: 0 });
    expect(confirmed.moves).toEqual([
      { grantId: "soon", kind: "CONFIRM", deltaSeconds: 200 },
      { grantId: "soon", kind: "GRANT_EXPIRED", deltaSeconds: -200 },
      { grantId: "never", kind: "CONFIRM", deltaSeconds: 300 },
    ]);
  });
  it("keeps every grant's parts summing to what it granted over every small case", () => {
    for (let first = 1; first <= 6; first += 1) {
      for (let second = 0; second <= 6; second += 1) {
        for (let reserve = 1; reserve <= first + second; reserve += 1) {
          for (let actual = 0; actual <= 16; actual += 1) {
            const start = [grant("a", first, inDays(1)), grant("b", second), grant("c", 2, null, { heldSeconds: 3 })];
            const held = hold(start, reserve, now)!;
            const result = confirm(held.grants, held.holds, actual, now);
            const before = balanceOf(held.grants);
            const after = balanceOf(result.grants);
            expect(after.secondsReserved).toBe(3);
            expect(after.secondsRemaining).toBe(before.secondsRemaining + result.moves.reduce((sum, move) => sum + move.deltaSeconds, 0));
            expect(result.chargedSeconds + result.unbilledSeconds).toBe(actual);
            expect(result.unbilledSeconds === 0 || after.secondsRemaining === 0).toBe(true);
          }
        }
      }
    }
  });
});

describe("release", () => {
  it("returns every held second to its own grant", () => {
    const held = hold([grant("a", 100, inDays(1)), grant("b", 100)], 150, now)!;
    const released = release(held.grants, held.holds, "RELEASE", now);
    expect(balanceOf(released.grants)).toEqual({ secondsRemaining: 200, secondsReserved: 0 });
    expect(released.moves).toEqual([
      { grantId: "a", kind: "RELEASE", deltaSeconds: 100 },
      { grantId: "b", kind: "RELEASE", deltaSeconds: 50 },
    ]);
  });
  it("refuses to give back more than a grant holds", () => {
    expect(() => release([grant("a", 0, null, { heldSeconds: 5 })], [{ grantId: "a", seconds: 6 }], "RELEASE", now)).toThrow();
  });
});

describe("expiry", () => {
  it("settles what remains of a grant at its instant, exactly, once", () => {
    const grants = [grant("due", 100, now, { heldSeconds: 20 }), grant("tomorrow", 50, inDays(1))];
    const expired = expireDue(grants, now);
    expect(expired.moves).toEqual([{ grantId: "due", kind: "GRANT_EXPIRED", deltaSeconds: -100 }]);
    expect(byId(expired.grants).due).toEqual({ remaining: 0, held: 20, charged: 0, expired: 100, takenBack: 0 });
    expect(expireDue(expired.grants, now).moves).toEqual([]);
    expect(expireDue(grants, new Date(now.getTime() - 1)).moves).toEqual([]);
  });
  it("tells the next expiry: the soonest instant and everything expiring then", () => {
    const grants = [grant("a", 100, inDays(3)), grant("b", 40, inDays(3)), grant("c", 10, inDays(1), { heldSeconds: 5 }), grant("d", 0, inDays(0.5), { heldSeconds: 5 }), grant("e", 999)];
    expect(nextExpiry(grants, now)).toEqual({ seconds: 10, at: inDays(1) });
    expect(nextExpiry([grant("e", 999)], now)).toBeNull();
  });
  it("presents a grant as of now: returning holds back, and expired when its instant passed", () => {
    const held = grant("a", 100, inDays(1), { heldSeconds: 30 });
    expect(presentGrant(held, 30, now)).toMatchObject({ remainingSeconds: 130, heldSeconds: 0, expiredSeconds: 0 });
    expect(presentGrant(held, 30, inDays(2))).toMatchObject({ remainingSeconds: 0, heldSeconds: 0, expiredSeconds: 130 });
    const settled = { ...grant("s", 0, inDays(-1), { heldSeconds: 30, expiredSeconds: 70 }), expirySettled: true };
    expect(presentGrant(settled, 30, now)).toMatchObject({ remainingSeconds: 0, heldSeconds: 0, expiredSeconds: 100 });
  });
});

describe("taking back", () => {
  it("deducts in spending order, all or nothing", () => {
    const grants = [grant("never", 100), grant("soon", 50, inDays(1))];
    expect(deduct(grants, 151, now)).toBeUndefined();
    expect(deduct(grants, 80, now)!.moves).toEqual([
      { grantId: "soon", kind: "ADJUSTMENT", deltaSeconds: -50 },
      { grantId: "never", kind: "ADJUSTMENT", deltaSeconds: -30 },
    ]);
  });
  it("refunds only from the named grants, as far as they have remaining", () => {
    const grants = [grant("pack", 40, inDays(300), { heldSeconds: 60 }), grant("subscription", 500, inDays(10))];
    const refunded = takeBackFrom(grants, new Set(["pack"]), 100, now);
    expect(refunded.takenSeconds).toBe(40);
    expect(byId(refunded.grants)).toEqual({
      pack: { remaining: 0, held: 60, charged: 0, expired: 0, takenBack: 40 },
      subscription: { remaining: 500, held: 0, charged: 0, expired: 0, takenBack: 0 },
    });
    expect(refunded.moves).toEqual([{ grantId: "pack", kind: "REFUND", deltaSeconds: -40 }]);
  });
  it("takes back what running jobs hold of a refunded grant as they give it back unused, never what they used", () => {
    const held = hold([grant("pack", 100, inDays(300)), grant("other", 500)], 100, now)!;
    const refunded = takeBackFrom(held.grants, new Set(["pack"]), 100, now);
    expect(refunded).toMatchObject({ takenSeconds: 0, pendingSeconds: 100 });
    // The job used 30 s: those are spent; the 70 it gives back are taken back, not returned to the customer.
    const confirmed = confirm(refunded.grants, held.holds, 30, now);
    expect(byId(confirmed.grants).pack).toEqual({ remaining: 0, held: 0, charged: 30, expired: 0, takenBack: 70 });
    expect(confirmed.grants.find((g) => g.id === "pack")!.pendingTakeBackSeconds).toBe(0);
    expect(confirmed.moves).toEqual([
      { grantId: "pack", kind: "CONFIRM", deltaSeconds: 70 },
      { grantId: "pack", kind: "REFUND", deltaSeconds: -70 },
    ]);
    const released = release(refunded.grants, held.holds, "RELEASE", now);
    expect(byId(released.grants).pack).toEqual({ remaining: 0, held: 0, charged: 0, expired: 0, takenBack: 100 });
  });
  it("retires a grant once nothing remains, nothing is held, and nothing can expire any more", () => {
    expect(isRetired(grant("spent", 0, null, { chargedSeconds: 5 }))).toBe(true);
    expect(isRetired(grant("held", 0, null, { heldSeconds: 5 }))).toBe(false);
    expect(isRetired(grant("to-expire", 0, inDays(1), { chargedSeconds: 5 }))).toBe(false);
    expect(isRetired(expireDue([grant("expired", 10, now)], now).grants[0]!)).toBe(true);
  });
});
