import { bearerToken, isJwtShaped } from "../../src/platform/auth";
import { encodeCursor, pageRequest, toPage } from "../../src/platform/pagination";

describe("bearer tokens", () => {
  it("reads only well-formed bearer headers", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
  it("tell a JWT from an opaque device token by shape", () => {
    expect(isJwtShaped("eyJh.eyJz.c2ln")).toBe(true);
    expect(isJwtShaped("spd_abcdef")).toBe(false);
    expect(isJwtShaped("a.b.c.d")).toBe(false);
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
