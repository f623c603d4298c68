// Staff and customer JWTs end to end: minted HS256 tokens and an identity provider's tokens
// verified against its JWKS (served by a local HTTP server), with rotation and every refusal.
import crypto from "node:crypto";
import { mintToken } from "../../src/platform/auth";
import { newSigningKey, signWith, startIdentityProvider, type IdentityProvider } from "../support/identity-provider";
import { freePort } from "../support/test-database";
import { startTestServer, type TestCustomer, type TestServer } from "../support/test-server";

let provider: IdentityProvider;
let server: TestServer;
let customer: TestCustomer;
const audience = "splice-api";
const nowSeconds = () => Math.floor(Date.now() / 1000);
const cooldownMs = 1000;
const waitOutCooldown = () => new Promise((resolve) => setTimeout(resolve, cooldownMs + 100));
const whoAmI = `{ me { id email } }`;
const staffOnly = `{ searchCustomers(query: "example") { edges { node { id } } } }`;

beforeAll(async () => {
  provider = await startIdentityProvider();
  server = await startTestServer({
    environment: {
      AUTH_JWKS_URL: provider.jwksUrl,
      AUTH_ISSUER: provider.issuer,
      AUTH_AUDIENCE: audience,
      AUTH_CLOCK_SKEW_SECONDS: "5",
      // The smallest cooldown: tests wait it out; production keeps the 30 s default.
      AUTH_JWKS_COOLDOWN_SECONDS: "1",
    },
  });
  customer = await server.createCustomer({ initialSeconds: 60 });
});

afterAll(async () => {
  await server.close();
  await provider.close();
});

const codes = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  (response.errors ?? []).map((error) => error.extensions?.code);

async function expectRefused(token: string, reason: string): Promise<void> {
  const response = await server.graphql(whoAmI, {}, token);
  expect({ me: response.data?.me, codes: codes(response), message: response.errors?.[0]?.message }).toEqual({
    me: null,
    codes: ["UNAUTHENTICATED"],
    message: `Invalid token: ${reason}`,
  });
}

describe("tokens this service mints (HS256)", () => {
  it("identify a customer and a staff member", async () => {
    const me = await server.graphql(whoAmI, {}, mintToken(server.config.auth, "customer", customer.id, 60));
    expect(me.data?.me).toEqual({ id: customer.id, email: customer.email });
    const staff = await server.graphql(staffOnly, {}, mintToken(server.config.auth, "staff", "alice", 60));
    expect(staff.errors).toBeUndefined();
  });

  it("are standard JWTs that jose can read", () => {
    const [header, payload] = mintToken(server.config.auth, "staff", "alice", 60).split(".");
    expect(JSON.parse(Buffer.from(header!, "base64url").toString())).toEqual({ alg: "HS256", typ: "JWT" });
    expect(JSON.parse(Buffer.from(payload!, "base64url").toString())).toMatchObject({ iss: "splice-api", aud: audience, sub: "alice", splice_role: "staff" });
  });

  it("are refused when expired, signed with another secret, or tampered with", async () => {
    await expectRefused(mintToken(server.config.auth, "customer", customer.id, 60, Date.now() - 120_000), "token expired");
    await expectRefused(mintToken({ ...server.config.auth, jwtSecret: "another-secret-that-is-long-enough-too" }, "customer", customer.id, 60), "bad signature");
    await expectRefused(mintToken({ ...server.config.auth, audience: "another-api" }, "customer", customer.id, 60), "claim aud check_failed");
    await expectRefused(mintToken({ ...server.config.auth, mintedIssuer: provider.issuer }, "customer", customer.id, 60), "claim iss check_failed");
    const [header, , signature] = mintToken(server.config.auth, "customer", customer.id, 60).split(".");
    const staffClaims = Buffer.from(JSON.stringify({ iss: "splice-api", aud: audience, sub: "mallory", splice_role: "staff", exp: nowSeconds() + 60 })).toString("base64url");
    const forged = await server.graphql(staffOnly, {}, `${header}.${staffClaims}.${signature}`);
    expect(codes(forged)).toEqual(["UNAUTHENTICATED"]);
  });
});

describe("an identity provider's tokens (JWKS)", () => {
  it("identify a customer and a staff member, with RS256, ES256 and EdDSA keys", async () => {
    for (const algorithm of ["RS256", "ES256", "EdDSA"] as const) {
      await provider.rotate(algorithm);
      await waitOutCooldown();
      const me = await server.graphql(whoAmI, {}, await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" }));
      expect(me.data?.me?.id).toBe(customer.id);
      const staff = await server.graphql(staffOnly, {}, await provider.sign({ sub: "support.bob", aud: audience, splice_role: ["viewer", "staff"] }));
      expect(staff.errors).toBeUndefined();
    }
  });

  it("are cached: many requests, one fetch of the key set", async () => {
    const token = await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" });
    await server.graphql(whoAmI, {}, token);
    const before = provider.fetches();
    for (let request = 0; request < 5; request += 1) expect((await server.graphql(whoAmI, {}, token)).data?.me?.id).toBe(customer.id);
    expect(provider.fetches()).toBe(before);
  });

  it("follow a key rotation: a token under a new kid makes the service fetch the set again", async () => {
    const oldKeyToken = await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" });
    await waitOutCooldown();
    const fetchesBefore = provider.fetches();
    const newKeyId = await provider.rotate("ES256");
    const newKeyToken = await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" }, { keyId: newKeyId });
    expect((await server.graphql(whoAmI, {}, newKeyToken)).data?.me?.id).toBe(customer.id);
    expect(provider.fetches()).toBe(fetchesBefore + 1);
    // The previous key is still published: its tokens keep working until they expire.
    expect((await server.graphql(whoAmI, {}, oldKeyToken)).data?.me?.id).toBe(customer.id);
  });

  it("answers a key published moments after the last fetch with 503 and Retry-After, then accepts it", async () => {
    await waitOutCooldown();
    const ghost = await newSigningKey("RS256", "never-published");
    // A fetch now: the kid is definitely unknown.
    await expectRefused(await signWith(ghost, { sub: customer.id, aud: audience, splice_role: "customer", iss: provider.issuer }, nowSeconds(), 600), "signed with a key the identity provider does not publish");
    const newKeyId = await provider.rotate("RS256");
    const token = await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" }, { keyId: newKeyId });
    const early = await server.graphql(whoAmI, {}, token);
    expect({ status: early.status, codes: codes(early), retryAfter: early.headers.get("retry-after") }).toEqual({ status: 503, codes: ["SERVICE_UNAVAILABLE"], retryAfter: "1" });
    await waitOutCooldown();
    expect((await server.graphql(whoAmI, {}, token)).data?.me?.id).toBe(customer.id);
  });

  it("accepts a token without a kid while two keys of its kind are published (a rotation)", async () => {
    await provider.rotate("RS256");
    await provider.rotate("RS256");
    await waitOutCooldown();
    const token = await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" }, { withoutKeyId: true });
    const response = await server.graphql(whoAmI, {}, token);
    expect({ id: response.data?.me?.id, errors: response.errors }).toEqual({ id: customer.id, errors: undefined });
  });

  it("refuses a wrong issuer, audience or algorithm, an expired token and a key the provider does not publish", async () => {
    const claims = { sub: customer.id, aud: audience, splice_role: "customer" };
    await expectRefused(await provider.sign({ ...claims, iss: "https://evil.example/" }), "claim iss check_failed");
    await expectRefused(await provider.sign({ ...claims, aud: "another-api" }), "claim aud check_failed");
    await expectRefused(await provider.sign(claims, { issuedAtSeconds: nowSeconds() - 3600, ttlSeconds: 600 }), "token expired");
    const stranger = await newSigningKey("RS256", "key-1");
    await expectRefused(await signWith(stranger, { ...claims, iss: provider.issuer }, nowSeconds(), 600), "bad signature");
    await waitOutCooldown();
    const unknownKid = await newSigningKey("RS256", "not-published");
    await expectRefused(await signWith(unknownKid, { ...claims, iss: provider.issuer }, nowSeconds(), 600), "signed with a key the identity provider does not publish");
  });

  it("refuses alg none, and an HS256 token keyed with a public key of the set", async () => {
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const claims = { iss: provider.issuer, aud: audience, sub: "mallory", splice_role: "staff", exp: nowSeconds() + 600 };
    const unsigned = `${encode({ alg: "none", typ: "JWT" })}.${encode(claims)}.`;
    expect(codes(await server.graphql(staffOnly, {}, unsigned))).toEqual(["UNAUTHENTICATED"]);
    const jwks = (await (await fetch(provider.jwksUrl)).json()) as { keys: { n?: string }[] };
    const publicKeyText = JSON.stringify(jwks.keys[0]);
    const signingInput = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
    const confused = `${signingInput}.${crypto.createHmac("sha256", publicKeyText).update(signingInput).digest("base64url")}`;
    expect(codes(await server.graphql(staffOnly, {}, confused))).toEqual(["UNAUTHENTICATED"]);
  });

  it("refuses a token without a valid role or subject", async () => {
    await expectRefused(await provider.sign({ sub: customer.id, aud: audience }), "claim splice_role must be staff or customer");
    await expectRefused(await provider.sign({ sub: customer.id, aud: audience, splice_role: "admin" }), "claim splice_role must be staff or customer");
    await expectRefused(await provider.sign({ sub: "not-a-customer-id", aud: audience, splice_role: "customer" }), "claim sub is not a valid customer id");
  });

  it("answers 503 with Retry-After, not 401, while the key set cannot be fetched for an unknown kid", async () => {
    provider.setDown(true);
    try {
      await waitOutCooldown();
      const newKeyId = await provider.rotate("RS256");
      const response = await server.graphql(whoAmI, {}, await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" }, { keyId: newKeyId }));
      expect({ status: response.status, codes: codes(response) }).toEqual({ status: 503, codes: ["SERVICE_UNAVAILABLE"] });
      expect(response.headers.get("retry-after")).toBe(String(server.config.transactions.unavailableRetryAfterSeconds));
      expect(response.errors?.[0]?.extensions?.retryAfterSeconds).toBe(server.config.transactions.unavailableRetryAfterSeconds);
    } finally {
      provider.setDown(false);
    }
  });
});

describe("when the identity provider cannot be reached", () => {
  it("keeps accepting tokens of keys it fetched before, asking the provider at most once per cooldown", async () => {
    const staleCache = await startTestServer({
      databaseUrl: server.databaseUrl,
      environment: {
        AUTH_JWKS_URL: provider.jwksUrl,
        AUTH_ISSUER: provider.issuer,
        AUTH_AUDIENCE: audience,
        AUTH_JWKS_CACHE_MAX_AGE_SECONDS: "1",
        AUTH_JWKS_COOLDOWN_SECONDS: "30",
        // Every request verifies its token against the key set: that is what this test watches.
        AUTH_VERIFIED_TOKEN_CACHE_ENTRIES: "0",
      },
    });
    try {
      const token = await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" });
      expect((await staleCache.graphql(whoAmI, {}, token)).data?.me?.id).toBe(customer.id);
      provider.setDown(true);
      await waitOutCooldown();
      const fetchesBefore = provider.fetches();
      for (let request = 0; request < 4; request += 1) expect((await staleCache.graphql(whoAmI, {}, token)).data?.me?.id).toBe(customer.id);
      expect(provider.fetches() - fetchesBefore).toBe(1);
    } finally {
      provider.setDown(false);
      await staleCache.close();
    }
  });

  it("answers 503, not 401, when its key set was never fetched and the connection is refused", async () => {
    const closedPort = await freePort();
    const unreachable = await startTestServer({
      databaseUrl: server.databaseUrl,
      environment: { AUTH_JWKS_URL: `http://127.0.0.1:${closedPort}/jwks.json`, AUTH_ISSUER: provider.issuer, AUTH_AUDIENCE: audience },
    });
    try {
      const response = await unreachable.graphql(whoAmI, {}, await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" }));
      expect({ status: response.status, codes: codes(response) }).toEqual({ status: 503, codes: ["SERVICE_UNAVAILABLE"] });
    } finally {
      await unreachable.close();
    }
  });
});

describe("claim mapping", () => {
  let mapped: TestServer;
  beforeAll(async () => {
    mapped = await startTestServer({
      databaseUrl: server.databaseUrl,
      environment: {
        AUTH_JWKS_URL: provider.jwksUrl,
        AUTH_ISSUER: provider.issuer,
        AUTH_AUDIENCE: audience,
        AUTH_ROLE_CLAIM: "https://splice.example/role",
        AUTH_SUBJECT_CLAIM: "splice_account",
      },
    });
  });
  afterAll(() => mapped.close());

  it("reads the role and the subject from the configured claims, for minted and external tokens alike", async () => {
    const external = await provider.sign({ sub: "auth0|12345", aud: audience, "https://splice.example/role": "customer", splice_account: customer.id });
    expect((await mapped.graphql(whoAmI, {}, external)).data?.me?.id).toBe(customer.id);
    const minted = mintToken(mapped.config.auth, "customer", customer.id, 60);
    expect(JSON.parse(Buffer.from(minted.split(".")[1]!, "base64url").toString())).toMatchObject({ splice_account: customer.id });
    expect((await mapped.graphql(whoAmI, {}, minted)).data?.me?.id).toBe(customer.id);
    const defaultClaims = await provider.sign({ sub: customer.id, aud: audience, splice_role: "customer" });
    expect(codes(await mapped.graphql(whoAmI, {}, defaultClaims))).toEqual(["UNAUTHENTICATED"]);
  });
});
