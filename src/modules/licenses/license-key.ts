// License keys: SPLICE-XXXX-XXXX-XXXX, twelve characters drawn by a cryptographically secure
// generator from an alphabet without look-alikes (no 0/O, 1/I/L): 31^12, about 2^59 keys.
import crypto from "node:crypto";

export const licenseKeyAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const keyPattern = /^SPLICE-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/;
const groupCount = 3;
const groupLength = 4;
const rawKeyMaxLength = 64;

export function generateLicenseKey(randomInt: (maxExclusive: number) => number = crypto.randomInt): string {
  const groups = Array.from({ length: groupCount }, () =>
    Array.from({ length: groupLength }, () => licenseKeyAlphabet[randomInt(licenseKeyAlphabet.length)]).join(""),
  );
  return `SPLICE-${groups.join("-")}`;
}

/** The key in its stored form, or undefined when it does not have the SPLICE-XXXX-XXXX-XXXX form. */
export function normaliseLicenseKey(raw: string): string | undefined {
  if (raw.length > rawKeyMaxLength) return undefined;
  const key = raw.trim().toUpperCase();
  return keyPattern.test(key) ? key : undefined;
}
