import { bearerToken, isJwtShaped } from "../../src/platform/auth";
import { Pager } from "../../src/platform/pagination";

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
  const pager = new Pager("a-cursor-secret-that-is-long-enough-to-use", 100);

  it("decode what they encode, for their own list only", () => {
    const cursor = pager.encodeCursor("ledger", 42n);
    expect(pager.request("ledger", 10, cursor)).toEqual({ ok: true, value: { first: 10, afterSeq: 42n } });
    expect(pager.request("reservation", 10, cursor).ok).toBe(false);
    expect(pager.request("ledger", 10, "garbage!").ok).toBe(false);
  });

  it("are opaque: no readable position, the same cursor for the same position, none forged", () => {
    const cursor = pager.encodeCursor("ledger", 42n);
    expect(Buffer.from(cursor, "base64url").toString("latin1")).not.toMatch(/ledger|:42/);
    expect(pager.encodeCursor("ledger", 42n)).toBe(cursor);
    const bytes = Buffer.from(cursor, "base64url");
    bytes[bytes.length - 20]! ^= 1;
    expect(pager.request("ledger", 10, bytes.toString("base64url")).ok).toBe(false);
    expect(pager.request("ledger", 10, Buffer.from("ledger:8").toString("base64url")).ok).toBe(false);
    const otherServer = new Pager("another-cursor-secret-long-enough-too!", 100);
    expect(otherServer.request("ledger", 10, cursor).ok).toBe(false);
  });

  it("serve a page size beyond the limit as the limit", () => {
    expect(pager.request("ledger", 101, null)).toEqual({ ok: true, value: { first: 100, afterSeq: undefined } });
    expect(pager.request("ledger", 0, null).ok).toBe(false);
  });

  it("report the pages around: more after when an extra row came back, one before after a cursor", () => {
    const rows = [{ seq: 3n }, { seq: 2n }, { seq: 1n }];
    const firstPage = pager.page("x", rows, { first: 2, afterSeq: undefined }, (row) => row.seq);
    expect(firstPage.edges).toHaveLength(2);
    expect(firstPage.pageInfo).toEqual({
      hasNextPage: true,
      hasPreviousPage: false,
      startCursor: pager.encodeCursor("x", 3n),
      endCursor: pager.encodeCursor("x", 2n),
    });
    const lastPage = pager.page("x", [{ seq: 1n }], { first: 2, afterSeq: 2n }, (row) => row.seq);
    expect(lastPage.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    expect(pager.page("x", [], { first: 2, afterSeq: 1n }, (row: { seq: bigint }) => row.seq).pageInfo).toEqual({
      hasNextPage: false,
      hasPreviousPage: true,
      startCursor: null,
      endCursor: null,
    });
  });
});
