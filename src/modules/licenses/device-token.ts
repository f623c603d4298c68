// Device tokens: opaque random secrets the plugin sends as its bearer token. Only their
// SHA-256 is stored, so a database leak does not leak working tokens.
import crypto from "node:crypto";

const devicePrefix = "spd_";
const tokenBytes = 32;
const tokenMaxLength = 128;

export function generateDeviceToken(): { token: string; tokenHash: string } {
  const token = devicePrefix + crypto.randomBytes(tokenBytes).toString("base64url");
  return { token, tokenHash: hashDeviceToken(token) };
}

export function hashDeviceToken(token: string): string {
  return crypto.createHash("sha256").update(token).digest("hex");
}

export function isDeviceToken(token: string): boolean {
  return token.startsWith(devicePrefix) && token.length <= tokenMaxLength;
}
