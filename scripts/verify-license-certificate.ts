// The reference verifier of offline license certificates, for plugin developers porting it to
// another language: only jose and the files given. Prints "valid" and the claims, or
// "invalid: <why>", and exits 0 or 1.
//
//   npm run --silent verify-certificate -- <certificate file or token> <jwks file> [--fingerprint <fpr>] [--now <ISO time>]
import fs from "node:fs";
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet } from "jose";

const issuer = process.env.LICENSE_CERTIFICATE_ISSUER ?? "splice-licensing";
// A certificate dated ahead of this machine's clock by more than this is refused.
const iatSkewSeconds = 60;

function argumentAfter(flag: string): string | undefined {
  const index = process.argv.indexOf(flag);
  return index > 0 ? process.argv[index + 1] : undefined;
}

function readTokenOrFile(value: string): string {
  return (fs.existsSync(value) ? fs.readFileSync(value, "utf8") : value).trim();
}

async function main(): Promise<number> {
  const [certificate, jwksFile] = process.argv.slice(2).filter((argument, index, all) => !argument.startsWith("--") && !all[index - 1]?.startsWith("--"));
  if (!certificate || !jwksFile) {
    process.stderr.write("usage: verify-license-certificate <certificate file or token> <jwks file> [--fingerprint <fpr>] [--now <ISO time>]\n");
    return 2;
  }
  const jwks = JSON.parse(fs.readFileSync(jwksFile, "utf8")) as JSONWebKeySet;
  const now = argumentAfter("--now");
  try {
    // EdDSA only: a certificate naming any other algorithm (none, HS256...) is refused.
    const { payload } = await jwtVerify(readTokenOrFile(certificate), createLocalJWKSet(jwks), {
      algorithms: ["EdDSA"],
      issuer,
      requiredClaims: ["sub", "lic", "cus", "fpr", "tier", "max", "iat", "exp"],
      ...(now ? { currentDate: new Date(now) } : {}),
    });
    const nowSeconds = Math.floor((now ? new Date(now) : new Date()).getTime() / 1000);
    if (Number(payload.iat) > nowSeconds + iatSkewSeconds) {
      process.stdout.write("invalid: issued in the future (iat)\n");
      return 1;
    }
    const fingerprint = argumentAfter("--fingerprint");
    if (fingerprint !== undefined && payload.fpr !== fingerprint) {
      process.stdout.write(`invalid: issued to another machine (fpr ${String(payload.fpr)})\n`);
      return 1;
    }
    const unchecked = fingerprint === undefined ? " (machine not checked: pass --fingerprint)" : "";
    process.stdout.write(`valid until ${new Date(Number(payload.exp) * 1000).toISOString()}${unchecked}\n${JSON.stringify(payload, null, 2)}\n`);
    return 0;
  } catch (error) {
    process.stdout.write(`invalid: ${reasonOf(error)}\n`);
    return 1;
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "expired";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "signature does not verify";
  if (error instanceof errors.JWKSNoMatchingKey) return "signed with a key not in the key set (fetch the key set again)";
  if (error instanceof errors.JOSEAlgNotAllowed) return "algorithm not allowed (EdDSA only)";
  if (error instanceof errors.JWTClaimValidationFailed) return `claim ${error.claim} ${error.reason}`;
  if (error instanceof errors.JOSEError) return `malformed (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`verify-license-certificate failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
