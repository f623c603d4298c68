import { purchaseGrantExpiresAt, subscriptionGrantExpiresAt } from "../../src/modules/billing/grant-expiry";

const start = Date.UTC(2026, 10, 1) / 1000;
const end = Date.UTC(2026, 11, 1) / 1000;

describe("subscription grants", () => {
  it("expire at the end of the paid period", () => {
    expect(subscriptionGrantExpiresAt({ startSeconds: start, endSeconds: end }, 0, 0)).toEqual(new Date("2026-12-01T00:00:00Z"));
  });
  it("plus the grace, plus whole periods of rollover", () => {
    expect(subscriptionGrantExpiresAt({ startSeconds: start, endSeconds: end }, 3600, 0)).toEqual(new Date("2026-12-01T01:00:00Z"));
    expect(subscriptionGrantExpiresAt({ startSeconds: start, endSeconds: end }, 0, 2)).toEqual(new Date("2027-01-30T00:00:00Z"));
  });
  it("refuses a period that ends before it starts as a bug", () => {
    expect(() => subscriptionGrantExpiresAt({ startSeconds: end, endSeconds: start }, 0, 0)).toThrow();
  });
});

describe("hour packs", () => {
  it("expire PURCHASE_GRANT_TTL_DAYS after the payment, or never with 0", () => {
    const paidAt = new Date("2026-11-27T10:00:00Z");
    expect(purchaseGrantExpiresAt(paidAt, 365)).toEqual(new Date("2027-11-27T10:00:00Z"));
    expect(purchaseGrantExpiresAt(paidAt, 0)).toBeNull();
  });
});
