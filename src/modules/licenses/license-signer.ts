// Offline license certificates: compact JWS (JWTs) signed with Ed25519 (EdDSA) by jose, each
// header naming its key (kid, the key's RFC 7638 thumbprint). The first configured key signs;
// every configured key is published, so certificates signed before a rotation keep verifying
// while their key stays listed.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { calculateJwkThumbprint, importPKCS8, SignJWT, type CryptoKey, type JWK } from "jose";
import { assert } from "../../platform/assert";

export interface SigningKey {
  keyId: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** What a certificate says about its device (claim names as in the contract's LicenseCertificate). */
export interface CertificateSubject {
  deviceId: string;
  licenseId: string;
  customerId: string;
  fingerprint: string;
  tier: string;
  maxDevices: number;
}

export interface IssuedCertificate {
  token: string;
  keyId: string;
  issuedAt: Date;
  expiresAt: Date;
}

export class LicenseSigner {
  private loaded: Promise<SigningKey[]> | undefined;

  constructor(
    private readonly pems: readonly string[],
    private readonly issuer: string,
  ) {
    assert(pems.length > 0, "a license signer needs at least one key");
  }

  /** Keys are imported on first use: configuration has already checked every PEM. */
  keys(): Promise<SigningKey[]> {
    this.loaded ??= Promise.all(this.pems.map(signingKeyOf));
    return this.loaded;
  }

  async sign(subject: CertificateSubject, ttlSeconds: number, now: Date): Promise<IssuedCertificate> {
    const [current] = await this.keys();
    assert(current, "no signing key");
    const issuedAtSeconds = Math.floor(now.getTime() / 1000);
    const expiresAtSeconds = issuedAtSeconds + ttlSeconds;
    const token = await new SignJWT({
      lic: subject.licenseId,
      cus: subject.customerId,
      fpr: subject.fingerprint,
      tier: subject.tier,
      max: subject.maxDevices,
    })
      .setProtectedHeader({ alg: "EdDSA", kid: current.keyId, typ: "JWT" })
      .setIssuer(this.issuer)
      .setSubject(subject.deviceId)
      .setIssuedAt(issuedAtSeconds)
      .setExpirationTime(expiresAtSeconds)
      .sign(current.privateKey);
    return { token, keyId: current.keyId, issuedAt: new Date(issuedAtSeconds * 1000), expiresAt: new Date(expiresAtSeconds * 1000) };
  }

  /** The public keys, as a JWKS's entries: the signing key first. */
  async publicKeys(): Promise<JWK[]> {
    return (await this.keys()).map((key) => key.publicJwk);
  }
}

async function signingKeyOf(pem: string): Promise<SigningKey> {
  const { kty, crv, x } = crypto.createPublicKey(pem).export({ format: "jwk" });
  const keyId = await calculateJwkThumbprint({ kty: String(kty), crv: String(crv), x: String(x) });
  return {
    keyId,
    privateKey: await importPKCS8(pem, "EdDSA"),
    publicJwk: { kty: String(kty), crv: String(crv), x: String(x), kid: keyId, alg: "EdDSA", use: "sig" },
  };
}

/**
 * Development without LICENSE_SIGNING_KEYS: one Ed25519 key, generated the first time into
 * `file` (mode 0600) and read from it afterwards, so certificates survive restarts. The key is
 * written to a temporary file and linked into place, so no process ever reads half a key; a
 * file that is not an Ed25519 private key stops the start with its name.
 */
export function readOrCreateDevelopmentSigningKey(file: string): { pem: string; created: boolean } {
  if (fs.existsSync(file)) return { pem: checkedSigningKey(file), created: false };
  const { privateKey } = crypto.generateKeyPairSync("ed25519");
  const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}`;
  fs.writeFileSync(temporary, pem, { mode: 0o600 });
  try {
    fs.linkSync(temporary, file);
    return { pem, created: true };
  } catch (error) {
    // Another process linked its key first: use that one, so both sign with the same key.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return { pem: checkedSigningKey(file), created: false };
    throw error;
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

function checkedSigningKey(file: string): string {
  const pem = fs.readFileSync(file, "utf8");
  try {
    if (crypto.createPrivateKey(pem).asymmetricKeyType === "ed25519") return pem;
  } catch {
    // Reported below, with the file's name.
  }
  throw new Error(`${file} is not an Ed25519 private key (PKCS#8 PEM): remove it to have a new one generated`);
}
