import crypto from "node:crypto";
import { loadConfig } from "../../src/config";
import { bearerToken, isJwtShaped, mintToken, TokenVerifier } from "../../src/platform/auth";
import { Pager } from "../../src/platform/pagination";

describe("bearer tokens", () => {
  it("remember a verified token, but never past its expiry", async () => {
    jest.useFakeTimers({ now: new Date("2026-11-26T12:00:00Z") });
    try {
      const auth = loadConfig({ NODE_ENV: "test", AUTH_CLOCK_SKEW_SECONDS: "0" }).auth;
      const verifier = new TokenVerifier(auth);
      const token = mintToken(auth, "staff", "alice", 30);
      expect(await verifier.verify(token)).toEqual({ kind: "staff", name: "alice" });
      jest.setSystemTime(new Date("2026-11-26T12:00:20Z"));
      expect(await verifier.verify(token)).toEqual({ kind: "staff", name: "alice" });
      jest.setSystemTime(new Date("2026-11-26T12:00:31Z"));
      expect(await verifier.verify(token)).toEqual({ kind: "rejected", reason: "token expired" });
    } finally {
      jest.useRealTimers();
    }
  });

  it("refuse HS256 when only an identity provider is configured: its public key is no HMAC secret", async () => {
    const identityProviderOnly = loadConfig({
      NODE_ENV: "production",
      AUTH_JWKS_URL: "https://idp.example/.well-known/jwks.json",
      AUTH_ISSUER: "https://idp.example/",
      CURSOR_SECRET: "a-cursor-secret-of-sufficient-length",
      STRIPE_SECRET_KEY: "sk_live_something-of-sufficient-length",
      STRIPE_WEBHOOK_SECRET: "whsec_something-of-sufficient-length",
      SMTP_URL: "smtps://user:pass@smtp.example.com:465",
      LICENSE_SIGNING_KEYS: crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    }).auth;
    expect(identityProviderOnly.jwtSecret).toBeUndefined();
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const claims = { iss: "https://idp.example/", aud: "splice-api", sub: "mallory", splice_role: "staff", exp: Math.floor(Date.now() / 1000) + 600 };
    const signingInput = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
    const publicKeyText = '{"kty":"RSA","n":"published","e":"AQAB"}';
    const confused = `${signingInput}.${crypto.createHmac("sha256", publicKeyText).update(signingInput).digest("base64url")}`;
    expect(await new TokenVerifier(identityProviderOnly).verify(confused)).toEqual({ kind: "rejected", reason: "algorithm HS256 not accepted" });
  });

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
  const alice = "customer-a";

  it("decode what they encode, for their own list and scope only", () => {
    const cursor = pager.encodeCursor("ledger", alice, 42n);
    expect(pager.request("ledger", alice, 10, cursor)).toEqual({ ok: true, value: { first: 10, afterSeq: 42n } });
    expect(pager.request("reservation", alice, 10, cursor).ok).toBe(false);
    expect(pager.request("ledger", "customer-b", 10, cursor).ok).toBe(false);
    expect(pager.request("ledger", alice, 10, "garbage!").ok).toBe(false);
  });

  it("are opaque: no readable position, the same length for every position, the same cursor for the same position", () => {
    const cursor = pager.encodeCursor("ledger", alice, 42n);
    expect(Buffer.from(cursor, "base64url").toString("latin1")).not.toMatch(/ledger|:42/);
    expect(pager.encodeCursor("ledger", alice, 42n)).toBe(cursor);
    const lengths = new Set([1n, 42n, 5_000_000n, 2n ** 62n].map((seq) => pager.encodeCursor("ledger", alice, seq).length));
    expect(lengths.size).toBe(1);
  });

  it("cannot be forged or altered", () => {
    const cursor = pager.encodeCursor("ledger", alice, 42n);
    const bytes = Buffer.from(cursor, "base64url");
    bytes[bytes.length - 20]! ^= 1;
    expect(pager.request("ledger", alice, 10, bytes.toString("base64url")).ok).toBe(false);
    expect(pager.request("ledger", alice, 10, `${cursor}!!`).ok).toBe(false);
    expect(pager.request("ledger", alice, 10, Buffer.from("ledger:8").toString("base64url")).ok).toBe(false);
    const otherServer = new Pager("another-cursor-secret-long-enough-too!", 100);
    expect(otherServer.request("ledger", alice, 10, cursor).ok).toBe(false);
  });

  it("serve a page size beyond the limit as the limit", () => {
    expect(pager.request("ledger", alice, 101, null)).toEqual({ ok: true, value: { first: 100, afterSeq: undefined } });
    expect(pager.request("ledger", alice, 0, null).ok).toBe(false);
  });

  it("report the pages around: more after when an extra row came back, one before after a cursor", () => {
    const rows = [{ seq: 3n }, { seq: 2n }, { seq: 1n }];
    const firstPage = pager.page("x", alice, rows, { first: 2, afterSeq: undefined }, (row) => row.seq);
    expect(firstPage.edges).toHaveLength(2);
    expect(firstPage.pageInfo).toEqual({
      hasNextPage: true,
      hasPreviousPage: false,
      startCursor: pager.encodeCursor("x", alice, 3n),
      endCursor: pager.encodeCursor("x", alice, 2n),
    });
    const lastPage = pager.page("x", alice, [{ seq: 1n }], { first: 2, afterSeq: 2n }, (row) => row.seq);
    expect(lastPage.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    expect(pager.page("x", alice, [], { first: 2, afterSeq: 1n }, (row: { seq: bigint }) => row.seq).pageInfo).toEqual({
      hasNextPage: false,
      hasPreviousPage: true,
      startCursor: null,
      endCursor: null,
    });
  });
});
