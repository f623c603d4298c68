import { adjust, confirm, hoursFromSeconds, newLowBalanceAlert, nextLowBalanceAlert, release, reserve, takeBack, type Balance } from "../../src/modules/credits/balance";
import { durationText } from "../../src/modules/credits/alerts.service";

describe("reserve", () => {
  it("moves seconds from remaining to reserved", () => {
    expect(reserve({ secondsRemaining: 1800, secondsReserved: 0 }, 360)).toEqual({ secondsRemaining: 1440, secondsReserved: 360 });
  });
  it("may take the balance to exactly zero", () => {
    expect(reserve({ secondsRemaining: 360, secondsReserved: 10 }, 360)).toEqual({ secondsRemaining: 0, secondsReserved: 370 });
  });
  it("refuses more than remains", () => {
    expect(reserve({ secondsRemaining: 359, secondsReserved: 0 }, 360)).toBeUndefined();
  });
  it("rejects a non-positive or fractional amount as a bug", () => {
    expect(() => reserve({ secondsRemaining: 10, secondsReserved: 0 }, 0)).toThrow();
    expect(() => reserve({ secondsRemaining: 10, secondsReserved: 0 }, 1.5)).toThrow();
  });
});

describe("confirm", () => {
  const held: Balance = { secondsRemaining: 100, secondsReserved: 600 };

  it("refunds what was reserved beyond the actual seconds", () => {
    expect(confirm(held, 600, 450)).toEqual({
      balance: { secondsRemaining: 250, secondsReserved: 0 },
      deltaSeconds: 150,
      chargedSeconds: 450,
      unbilledSeconds: 0,
    });
  });
  it("charges exactly the reservation with a zero change", () => {
    expect(confirm(held, 600, 600)).toMatchObject({ deltaSeconds: 0, chargedSeconds: 600, unbilledSeconds: 0 });
  });
  it("takes the extra from remaining when it covers it", () => {
    expect(confirm(held, 600, 650)).toEqual({
      balance: { secondsRemaining: 50, secondsReserved: 0 },
      deltaSeconds: -50,
      chargedSeconds: 650,
      unbilledSeconds: 0,
    });
  });
  it("clamps at zero and records the rest as unbilled", () => {
    expect(confirm(held, 600, 1000)).toEqual({
      balance: { secondsRemaining: 0, secondsReserved: 0 },
      deltaSeconds: -100,
      chargedSeconds: 700,
      unbilledSeconds: 300,
    });
  });
  it("keeps other reservations' seconds reserved", () => {
    expect(confirm({ secondsRemaining: 0, secondsReserved: 900 }, 600, 0).balance).toEqual({ secondsRemaining: 600, secondsReserved: 300 });
  });
  it("holds its invariants over every small case", () => {
    for (let remaining = 0; remaining <= 12; remaining += 1) {
      for (let reserved = 1; reserved <= 12; reserved += 1) {
        for (let actual = 0; actual <= 30; actual += 1) {
          const before = { secondsRemaining: remaining, secondsReserved: reserved + 3 };
          const result = confirm(before, reserved, actual);
          expect(result.balance.secondsRemaining).toBeGreaterThanOrEqual(0);
          expect(result.balance.secondsRemaining).toBe(remaining + result.deltaSeconds);
          expect(result.balance.secondsReserved).toBe(3);
          expect(result.chargedSeconds + result.unbilledSeconds).toBe(actual);
          expect(result.chargedSeconds).toBe(reserved - result.deltaSeconds);
          expect(result.unbilledSeconds === 0 || result.balance.secondsRemaining === 0).toBe(true);
        }
      }
    }
  });
  it("refuses to settle more than is reserved", () => {
    expect(() => confirm({ secondsRemaining: 0, secondsReserved: 10 }, 11, 5)).toThrow();
  });
});

describe("release", () => {
  it("returns every reserved second", () => {
    expect(release({ secondsRemaining: 5, secondsReserved: 600 }, 600)).toEqual({ secondsRemaining: 605, secondsReserved: 0 });
  });
  it("refuses to release more than is reserved", () => {
    expect(() => release({ secondsRemaining: 5, secondsReserved: 10 }, 11)).toThrow();
  });
});

describe("adjust", () => {
  it("grants and deducts", () => {
    expect(adjust({ secondsRemaining: 100, secondsReserved: 50 }, 25, 1000)).toEqual({ ok: true, balance: { secondsRemaining: 125, secondsReserved: 50 } });
    expect(adjust({ secondsRemaining: 100, secondsReserved: 50 }, -100, 1000)).toEqual({ ok: true, balance: { secondsRemaining: 0, secondsReserved: 50 } });
  });
  it("never goes below zero", () => {
    expect(adjust({ secondsRemaining: 100, secondsReserved: 0 }, -101, 1000)).toEqual({ ok: false, reason: "insufficient" });
  });
  it("never exceeds the maximum balance, reserved seconds included", () => {
    expect(adjust({ secondsRemaining: 900, secondsReserved: 50 }, 51, 1000)).toEqual({ ok: false, reason: "above-maximum" });
  });
});

describe("takeBack", () => {
  it("takes what remains, never below zero", () => {
    expect(takeBack({ secondsRemaining: 300, secondsReserved: 60 }, 500)).toEqual({
      balance: { secondsRemaining: 0, secondsReserved: 60 },
      takenSeconds: 300,
    });
    expect(takeBack({ secondsRemaining: 300, secondsReserved: 0 }, 100).takenSeconds).toBe(100);
  });
});

it("shows hours for display", () => {
  expect(hoursFromSeconds(5400)).toBe(1.5);
});

describe("low-balance alert", () => {
  const armed = (thresholdSeconds: number | null) => ({ thresholdSeconds, armed: true });
  it("fires once on falling below, re-arms only above the threshold", () => {
    expect(nextLowBalanceAlert(armed(500), 499)).toEqual({ alert: { thresholdSeconds: 500, armed: false }, fire: true });
    expect(nextLowBalanceAlert(armed(500), 500)).toEqual({ alert: armed(500), fire: false });
    const fired = { thresholdSeconds: 500, armed: false };
    expect(nextLowBalanceAlert(fired, 100)).toEqual({ alert: fired, fire: false });
    expect(nextLowBalanceAlert(fired, 500)).toEqual({ alert: fired, fire: false });
    expect(nextLowBalanceAlert(fired, 501)).toEqual({ alert: armed(500), fire: false });
  });
  it("never fires when off, and a new threshold below the balance's level waits", () => {
    expect(nextLowBalanceAlert(armed(null), 0)).toEqual({ alert: armed(null), fire: false });
    expect(newLowBalanceAlert(500, 400)).toEqual({ thresholdSeconds: 500, armed: false });
    expect(newLowBalanceAlert(500, 500)).toEqual(armed(500));
    expect(newLowBalanceAlert(null, 0)).toEqual(armed(null));
  });
});

describe("durations for people", () => {
  it("reads as hours, minutes and seconds, leaving out what is zero", () => {
    expect(durationText(3600)).toBe("1 h");
    expect(durationText(3599)).toBe("59 min 59 s");
    expect(durationText(500)).toBe("8 min 20 s");
    expect(durationText(17)).toBe("17 s");
    expect(durationText(0)).toBe("0 s");
    expect(durationText(3900)).toBe("1 h 5 min");
  });
});
