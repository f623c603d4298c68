import { fitsBalanceMax, hoursFromSeconds, newLowBalanceAlert, nextLowBalanceAlert } from "../../src/modules/credits/balance";
import { durationText } from "../../src/modules/credits/alerts.service";

describe("fitsBalanceMax", () => {
  it("counts reserved seconds with remaining ones, up to the maximum inclusive", () => {
    expect(fitsBalanceMax({ secondsRemaining: 900, secondsReserved: 50 }, 50, 1000)).toBe(true);
    expect(fitsBalanceMax({ secondsRemaining: 900, secondsReserved: 50 }, 51, 1000)).toBe(false);
  });
  it("rejects a non-positive amount as a bug", () => {
    expect(() => fitsBalanceMax({ secondsRemaining: 0, secondsReserved: 0 }, 0, 1000)).toThrow();
  });
});

it("shows hours for display", () => {
  expect(hoursFromSeconds(5400)).toBe(1.5);
});

describe("low-balance alert", () => {
  const armed = (thresholdSeconds: number | null) => ({ thresholdSeconds, armed: true });
  it("fires once on falling below, re-arms at the threshold or above", () => {
    expect(nextLowBalanceAlert(armed(500), 499)).toEqual({ alert: { thresholdSeconds: 500, armed: false }, fire: true });
    expect(nextLowBalanceAlert(armed(500), 500)).toEqual({ alert: armed(500), fire: false });
    const fired = { thresholdSeconds: 500, armed: false };
    expect(nextLowBalanceAlert(fired, 100)).toEqual({ alert: fired, fire: false });
    expect(nextLowBalanceAlert(fired, 499)).toEqual({ alert: fired, fire: false });
    expect(nextLowBalanceAlert(fired, 500)).toEqual({ alert: armed(500), fire: false });
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
