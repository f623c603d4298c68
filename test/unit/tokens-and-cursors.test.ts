import { bearerToken, mintSignedToken, verifySignedToken } from "../../src/platform/auth";
import { encodeCursor, pageRequest, toPage } from "../../src/platform/pagination";

const secret = "a-test-secret-that-is-long-enough-to-use";
const customerId = "0b5b3f0e-8a43-4a4f-9a55-3f1f0f6b8c11";

describe("signed tokens", () => {
  it("round-trips staff and customer callers", () => {
    expect(verifySignedToken(secret, mintSignedToken(secret, "staff", "alice", 60))).toEqual({ kind: "staff", name: "alice" });
    expect(verifySignedToken(secret, mintSignedToken(secret, "customer", customerId, 60))).toEqual({ kind: "customer", customerId });
  });
  it("refuses expired, tampered and foreign tokens", () => {
    const now = Date.now();
    expect(verifySignedToken(secret, mintSignedToken(secret, "staff", "alice", 60, now - 61_000), now)).toEqual({ kind: "rejected", reason: "token expired" });
    const token = mintSignedToken(secret, "customer", customerId, 60);
    const [prefix1, prefix2, body, signature] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ role: "staff", subject: "mallory", issuedAtSeconds: 0, expiresAtSeconds: 9e9 })).toString("base64url");
    expect(verifySignedToken(secret, `${prefix1}.${prefix2}.${forged}.${signature}`).kind).toBe("rejected");
    expect(verifySignedToken(secret, `${prefix1}.${prefix2}.${body}.${signature}x`).kind).toBe("rejected");
    expect(verifySignedToken("another-secret-that-is-long-enough-too", token).kind).toBe("rejected");
  });
  it("refuses to mint for a malformed subject", () => {
    expect(() => mintSignedToken(secret, "customer", "not-a-uuid", 60)).toThrow();
  });
  it("reads only well-formed bearer headers", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe("cursors", () => {
  it("decode what they encode, for their own list only", () => {
    const cursor = encodeCursor("ledger", 42n);
    expect(pageRequest("ledger", 10, cursor, 100)).toEqual({ ok: true, value: { first: 10, afterSeq: 42n } });
    expect(pageRequest("reservation", 10, cursor, 100).ok).toBe(false);
    expect(pageRequest("ledger", 10, "garbage!", 100).ok).toBe(false);
  });
  it("bound the page size", () => {
    expect(pageRequest("ledger", 101, null, 100).ok).toBe(false);
    expect(pageRequest("ledger", 100, null, 100).ok).toBe(true);
  });
  it("report a next page when an extra row came back", () => {
    const page = toPage("x", [{ seq: 3n }, { seq: 2n }, { seq: 1n }], 2, (row) => row.seq);
    expect(page.edges).toHaveLength(2);
    expect(page.pageInfo).toEqual({ hasNextPage: true, endCursor: encodeCursor("x", 2n) });
  });
});
