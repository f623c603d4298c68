// Who is calling. Staff and customer tokens are HMAC-signed (stateless, minted by
// `npm run token`); device tokens are opaque secrets looked up by hash (licenses module).
import crypto from "node:crypto";

export type Caller =
  | { kind: "anonymous" }
  | { kind: "rejected"; reason: string }
  | { kind: "staff"; name: string }
  | { kind: "customer"; customerId: string }
  | { kind: "device"; customerId: string; deviceId: string };

export type SignedRole = "staff" | "customer";

interface SignedTokenPayload {
  role: SignedRole;
  subject: string;
  issuedAtSeconds: number;
  expiresAtSeconds: number;
}

const signedTokenPrefix = "splice.v1.";
const tokenMaxLength = 2048;
const staffNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function signature(secret: string, body: string): string {
  return crypto.createHmac("sha256", secret).update(body).digest("base64url");
}

export function isValidSubject(role: SignedRole, subject: string): boolean {
  return role === "staff" ? staffNamePattern.test(subject) : uuidPattern.test(subject);
}

export function mintSignedToken(
  secret: string,
  role: SignedRole,
  subject: string,
  ttlSeconds: number,
  nowMs = Date.now(),
): string {
  if (!isValidSubject(role, subject)) throw new Error(`invalid ${role} subject: ${subject}`);
  const issuedAtSeconds = Math.floor(nowMs / 1000);
  const payload: SignedTokenPayload = { role, subject, issuedAtSeconds, expiresAtSeconds: issuedAtSeconds + ttlSeconds };
  const body = Buffer.from(JSON.stringify(payload)).toString("base64url");
  return `${signedTokenPrefix}${body}.${signature(secret, body)}`;
}

export function isSignedToken(token: string): boolean {
  return token.startsWith(signedTokenPrefix);
}

/** The caller a signed token names, or why it is refused. Constant-time signature check. */
export function verifySignedToken(secret: string, token: string, nowMs = Date.now()): Caller {
  if (token.length > tokenMaxLength) return { kind: "rejected", reason: "token too long" };
  const [body, givenSignature, ...rest] = token.slice(signedTokenPrefix.length).split(".");
  if (!body || !givenSignature || rest.length > 0) return { kind: "rejected", reason: "malformed token" };
  const expected = Buffer.from(signature(secret, body));
  const given = Buffer.from(givenSignature);
  if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) {
    return { kind: "rejected", reason: "bad signature" };
  }
  let payload: SignedTokenPayload;
  try {
    payload = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as SignedTokenPayload;
  } catch {
    return { kind: "rejected", reason: "malformed token" };
  }
  if (payload.expiresAtSeconds * 1000 <= nowMs) return { kind: "rejected", reason: "token expired" };
  if (!isValidSubject(payload.role, payload.subject)) return { kind: "rejected", reason: "malformed token" };
  return payload.role === "staff"
    ? { kind: "staff", name: payload.subject }
    : { kind: "customer", customerId: payload.subject };
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
