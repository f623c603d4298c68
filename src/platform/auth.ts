// Who is calling. Staff and customer bearer tokens are JWTs, verified with `jose`: HS256 ones
// this service mints (`npm run token`), and, when AUTH_JWKS_URL is set, an identity provider's
// (RS256, ES256, EdDSA) with keys fetched and cached from its JWKS. Device tokens are opaque
// secrets looked up by hash (licenses module).
import crypto from "node:crypto";
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from "jose";
import type { AuthConfig } from "../config";

export type Caller =
  | { kind: "anonymous" }
  | { kind: "rejected"; reason: string }
  | { kind: "staff"; name: string }
  | { kind: "customer"; customerId: string }
  | { kind: "device"; customerId: string; deviceId: string };

export type TokenRole = "staff" | "customer";

const mintedAlgorithm = "HS256";
// Asymmetric only: an HMAC key would be the JWKS's public key, the classic algorithm confusion.
const identityProviderAlgorithms = ["RS256", "ES256", "EdDSA"];
const staffNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isValidSubject(role: TokenRole, subject: string): boolean {
  return role === "staff" ? staffNamePattern.test(subject) : uuidPattern.test(subject);
}

/** The identity provider's keys could not be fetched: the caller is unknown, not refused (503). */
export class IdentityProviderUnavailableError extends Error {
  constructor(cause: unknown) {
    super("identity provider's key set unavailable", { cause });
  }
}

/**
 * Mints an HS256 JWT the verifier accepts. Synchronous (plain HMAC over the standard encoding)
 * so that the CLI, tests and bench mint without awaiting; jose verifies it like any JWT.
 */
export function mintToken(auth: AuthConfig, role: TokenRole, subject: string, ttlSeconds: number, nowMs = Date.now()): string {
  if (!auth.jwtSecret) throw new Error("AUTH_JWT_SECRET is not set: this service mints no tokens");
  if (!isValidSubject(role, subject)) throw new Error(`invalid ${role} subject: ${subject}`);
  const issuedAtSeconds = Math.floor(nowMs / 1000);
  const claims: JWTPayload = {
    iss: auth.mintedIssuer,
    aud: auth.audience,
    [auth.subjectClaim]: subject,
    [auth.roleClaim]: role,
    iat: issuedAtSeconds,
    exp: issuedAtSeconds + ttlSeconds,
  };
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const signingInput = `${encode({ alg: mintedAlgorithm, typ: "JWT" })}.${encode(claims)}`;
  const signature = crypto.createHmac("sha256", auth.jwtSecret).update(signingInput).digest("base64url");
  return `${signingInput}.${signature}`;
}

/** The provider's keys could not be checked yet: a key rotation is cooling down (503, then retry). */
export class IdentityProviderCoolingDownError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("unknown signing key; the identity provider's key set was fetched moments ago");
  }
}

type VerifyOptions = Parameters<typeof jwtVerify>[2];

/**
 * An identity provider's key set: jose's remote set (cached, refetched when stale or when a
 * token names an unknown kid, at most once per cooldown), plus what it leaves to its user. While
 * the provider is unreachable, tokens signed with keys already fetched keep verifying against
 * those keys, and the provider is not asked again before the cooldown ends. An unknown kid
 * during the cooldown may be a key published since the last fetch: a 503 to retry, not a 401.
 * A token without a kid, during a rotation when two keys fit it, is tried against each.
 */
class IdentityProviderKeys {
  private readonly remote: ReturnType<typeof createRemoteJWKSet>;
  private unreachableUntilMs = 0;

  constructor(private readonly provider: NonNullable<AuthConfig["identityProvider"]>) {
    this.remote = createRemoteJWKSet(new URL(provider.jwksUrl), {
      timeoutDuration: provider.timeoutMs,
      cacheMaxAge: provider.cacheMaxAgeSeconds * 1000,
      cooldownDuration: provider.cooldownSeconds * 1000,
    });
  }

  async verify(token: string, options: VerifyOptions): Promise<JWTPayload> {
    const lastKnown = this.remote.jwks();
    if (lastKnown && Date.now() < this.unreachableUntilMs) return verifyWithLastKnown(token, lastKnown, options);
    // Cooling down before the attempt: an unknown kid may be a key published since the last fetch.
    const coolingDown = this.remote.coolingDown;
    try {
      return await this.verifyWithRemote(token, options, coolingDown);
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey && coolingDown) {
        throw new IdentityProviderCoolingDownError(this.provider.cooldownSeconds);
      }
      if (!isFetchFailure(error)) throw error;
      this.unreachableUntilMs = Date.now() + this.provider.cooldownSeconds * 1000;
      if (!lastKnown) throw new IdentityProviderUnavailableError(error);
      return verifyWithLastKnown(token, lastKnown, options);
    }
  }

  /**
   * A token without a kid names no key to look for, so jose would not refetch for it: when none
   * of the cached keys verifies it, the set is fetched once more (at most once per cooldown).
   */
  private async verifyWithRemote(token: string, options: VerifyOptions, coolingDown: boolean): Promise<JWTPayload> {
    try {
      return await verifyWithEach(token, this.remote, options);
    } catch (error) {
      const namesNoKey = decodeProtectedHeader(token).kid === undefined;
      if (!(error instanceof joseErrors.JWSSignatureVerificationFailed) || !namesNoKey || coolingDown) throw error;
      await this.remote.reload();
      return verifyWithEach(token, this.remote, options);
    }
  }
}

/** While the provider is unreachable: its last key set decides, and a kid not in it is not known yet (503). */
async function verifyWithLastKnown(token: string, lastKnown: JSONWebKeySet, options: VerifyOptions): Promise<JWTPayload> {
  try {
    return await verifyWithEach(token, createLocalJWKSet(lastKnown), options);
  } catch (error) {
    if (error instanceof joseErrors.JWKSNoMatchingKey) throw new IdentityProviderUnavailableError(error);
    throw error;
  }
}

type KeyResolver = ReturnType<typeof createLocalJWKSet> | ReturnType<typeof createRemoteJWKSet>;

async function verifyWithEach(token: string, keys: KeyResolver, options: VerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, keys, options)).payload;
  } catch (error) {
    if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw error;
    for await (const key of error) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (attempt) {
        if (!(attempt instanceof joseErrors.JWSSignatureVerificationFailed)) throw attempt;
      }
    }
    throw new joseErrors.JWSSignatureVerificationFailed();
  }
}

/**
 * Callers of tokens verified recently, so a client's every request does not pay a signature
 * check (about 0.16 ms of CPU with jose's WebCrypto HMAC): kept at most `ttlSeconds` and never
 * past the token's own expiry; the oldest leave first beyond `maxEntries`. Refusals are not
 * kept, so a flood of garbage cannot evict good entries for long.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, { caller: Caller; validUntilMs: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlSeconds: number,
  ) {}

  get(token: string, nowMs: number): Caller | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.validUntilMs > nowMs) return entry.caller;
    this.entries.delete(token);
    return undefined;
  }

  remember(token: string, caller: Caller, expiresAtSeconds: number, nowMs: number): void {
    if (this.maxEntries === 0) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(token, { caller, validUntilMs: Math.min(expiresAtSeconds * 1000, nowMs + this.ttlSeconds * 1000) });
  }
}

export class TokenVerifier {
  private readonly secretKey: Uint8Array | undefined;
  private readonly identityProviderKeys: IdentityProviderKeys | undefined;
  private readonly verified: VerifiedTokens;

  constructor(private readonly auth: AuthConfig) {
    this.secretKey = auth.jwtSecret ? new TextEncoder().encode(auth.jwtSecret) : undefined;
    this.identityProviderKeys = auth.identityProvider ? new IdentityProviderKeys(auth.identityProvider) : undefined;
    this.verified = new VerifiedTokens(auth.verifiedTokenCacheEntries, auth.verifiedTokenCacheSeconds);
  }

  /**
   * The caller a bearer JWT names, or why it is refused. Throws IdentityProviderUnavailableError
   * or IdentityProviderCoolingDownError when the provider's keys cannot be checked (a 503).
   */
  async verify(token: string): Promise<Caller> {
    const nowMs = Date.now();
    const known = this.verified.get(token, nowMs);
    if (known) return known;
    if (token.length > this.auth.tokenMaxLength) return { kind: "rejected", reason: "token too long" };
    let algorithm: unknown;
    try {
      algorithm = decodeProtectedHeader(token).alg;
    } catch {
      return { kind: "rejected", reason: "malformed token" };
    }
    try {
      const payload = await this.verifiedPayload(token, algorithm);
      if (!payload) return { kind: "rejected", reason: `algorithm ${String(algorithm)} not accepted` };
      const caller = this.callerOf(payload);
      if (caller.kind !== "rejected" && typeof payload.exp === "number") this.verified.remember(token, caller, payload.exp, nowMs);
      return caller;
    } catch (error) {
      return rejectionOf(error);
    }
  }

  private async verifiedPayload(token: string, algorithm: unknown): Promise<JWTPayload | undefined> {
    const common = { audience: this.auth.audience, clockTolerance: this.auth.clockSkewSeconds, requiredClaims: ["exp"] };
    if (algorithm === mintedAlgorithm && this.secretKey) {
      return (await jwtVerify(token, this.secretKey, { ...common, algorithms: [mintedAlgorithm], issuer: this.auth.mintedIssuer })).payload;
    }
    const provider = this.auth.identityProvider;
    if (typeof algorithm === "string" && identityProviderAlgorithms.includes(algorithm) && provider && this.identityProviderKeys) {
      return this.identityProviderKeys.verify(token, { ...common, algorithms: identityProviderAlgorithms, issuer: provider.issuer });
    }
    return undefined;
  }

  private callerOf(payload: JWTPayload): Caller {
    const role = roleOf(payload[this.auth.roleClaim]);
    const subject = payload[this.auth.subjectClaim];
    if (!role) return { kind: "rejected", reason: `claim ${this.auth.roleClaim} must be staff or customer` };
    if (typeof subject !== "string" || !isValidSubject(role, subject)) {
      return { kind: "rejected", reason: `claim ${this.auth.subjectClaim} is not a valid ${role === "staff" ? "staff name" : "customer id"}` };
    }
    return role === "staff" ? { kind: "staff", name: subject } : { kind: "customer", customerId: subject };
  }
}

/** A role claim is a string, or a list of roles (some providers only issue lists): staff wins. */
function roleOf(claim: unknown): TokenRole | undefined {
  const roles = Array.isArray(claim) ? claim : [claim];
  if (roles.includes("staff")) return "staff";
  if (roles.includes("customer")) return "customer";
  return undefined;
}

function rejectionOf(error: unknown): Caller {
  if (error instanceof IdentityProviderUnavailableError || error instanceof IdentityProviderCoolingDownError) throw error;
  if (isFetchFailure(error)) throw new IdentityProviderUnavailableError(error);
  if (error instanceof joseErrors.JWTExpired) return { kind: "rejected", reason: "token expired" };
  if (error instanceof joseErrors.JWTClaimValidationFailed) return { kind: "rejected", reason: `claim ${error.claim} ${error.reason}` };
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return { kind: "rejected", reason: "bad signature" };
  if (error instanceof joseErrors.JWKSNoMatchingKey) return { kind: "rejected", reason: "signed with a key the identity provider does not publish" };
  if (error instanceof joseErrors.JOSEError) return { kind: "rejected", reason: "malformed token" };
  throw error;
}

/** The JWKS unreachable (refused, reset, DNS), answering non-200, or not a key set: the provider's fault. */
function isFetchFailure(error: unknown): boolean {
  if (error instanceof joseErrors.JWKSInvalid || error instanceof joseErrors.JWKSTimeout) return true;
  // By name: undici's TypeError may come from another realm (a test runner's sandbox).
  const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
  if (name === "TypeError" && message === "fetch failed") return true;
  return error instanceof joseErrors.JOSEError && error.code === "ERR_JOSE_GENERIC" && error.message.includes("JSON Web Key Set");
}

/** Three dot-separated parts: a JWS. Device tokens have no dots. */
export function isJwtShaped(token: string): boolean {
  return token.split(".", 4).length === 3;
}

export function bearerToken(authorizationHeader: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorizationHeader ?? "");
  return match?.[1];
}

/** How ledger entries and audit records name who caused them. */
export function actorOf(caller: Caller): string {
  switch (caller.kind) {
    case "staff":
      return `staff:${caller.name}`;
    case "customer":
      return `customer:${caller.customerId}`;
    case "device":
      return `device:${caller.deviceId}`;
    default:
      return "system";
  }
}
