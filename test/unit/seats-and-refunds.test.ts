import { refundDueSeconds } from "../../src/modules/billing/refund-share";
import { certificateLifetimeSeconds, devicesBeyondSeats, hasFreeSeat } from "../../src/modules/licenses/seats";

describe("seats", () => {
  it("have room until every seat is taken", () => {
    expect(hasFreeSeat(0, 2)).toBe(true);
    expect(hasFreeSeat(1, 2)).toBe(true);
    expect(hasFreeSeat(2, 2)).toBe(false);
    expect(hasFreeSeat(3, 2)).toBe(false);
  });

  it("give back the newest devices beyond the seats, newest first", () => {
    expect(devicesBeyondSeats(["oldest", "middle", "newer", "newest"], 2)).toEqual(["newest", "newer"]);
    expect(devicesBeyondSeats(["a", "b"], 2)).toEqual([]);
    expect(devicesBeyondSeats(["a", "b"], 5)).toEqual([]);
    expect(devicesBeyondSeats(["a", "b"], 0)).toEqual(["b", "a"]);
  });
});

describe("refund share", () => {
  const granted = { grantedSeconds: 36_000, chargeAmount: 2_000 };

  it("takes back the refunded share of the grant, rounded down", () => {
    expect(refundDueSeconds({ ...granted, amountRefunded: 2_000, takenBackSeconds: 0 })).toBe(36_000);
    expect(refundDueSeconds({ ...granted, amountRefunded: 500, takenBackSeconds: 0 })).toBe(9_000);
    expect(refundDueSeconds({ ...granted, amountRefunded: 1, takenBackSeconds: 0 })).toBe(18);
    expect(refundDueSeconds({ grantedSeconds: 10, chargeAmount: 3, amountRefunded: 1, takenBackSeconds: 0 })).toBe(3);
  });

  it("takes back only what earlier partial refunds of the charge did not", () => {
    expect(refundDueSeconds({ ...granted, amountRefunded: 1_000, takenBackSeconds: 9_000 })).toBe(9_000);
    expect(refundDueSeconds({ ...granted, amountRefunded: 1_000, takenBackSeconds: 18_000 })).toBe(0);
    expect(refundDueSeconds({ ...granted, amountRefunded: 500, takenBackSeconds: 18_000 })).toBe(0);
  });

  it("never takes back more than was granted, and treats a free charge as fully refunded", () => {
    expect(refundDueSeconds({ ...granted, amountRefunded: 5_000, takenBackSeconds: 0 })).toBe(36_000);
    expect(refundDueSeconds({ grantedSeconds: 600, chargeAmount: 0, amountRefunded: 0, takenBackSeconds: 0 })).toBe(600);
  });
});

describe("certificate lifetime", () => {
  const limits = { certificateTtlSeconds: 1_209_600, disputedCertificateTtlSeconds: 86_400, disputeMemoryDays: 180 };
  const now = new Date("2026-11-26T12:00:00Z");
  it("is the full lifetime without a dispute or long after one, and short while one is recent", () => {
    expect(certificateLifetimeSeconds(null, now, limits)).toBe(1_209_600);
    expect(certificateLifetimeSeconds(new Date("2026-11-20T12:00:00Z"), now, limits)).toBe(86_400);
    expect(certificateLifetimeSeconds(new Date("2026-05-30T12:00:01Z"), now, limits)).toBe(86_400);
    expect(certificateLifetimeSeconds(new Date("2026-05-30T12:00:00Z"), now, limits)).toBe(1_209_600);
  });
});
