// Offline license certificates through the API: issued at activation and on checkout, verified
// with the published key set alone, refused when altered, foreign, expired or unsigned; key
// rotation; deactivated devices; the checkout rate limit; the reference verifier script.
import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet } from "jose";
import { startTestServer, testSigningKeyPem, type TestServer } from "../support/test-server";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ environment: { CERTIFICATE_CHECKOUTS_PER_DEVICE_PER_HOUR: "3" } });
});
afterAll(() => server.close());

const issuer = "splice-licensing";
const activateMutation = `mutation($input: ActivateLicenseInput!) {
  activateLicense(input: $input) { customerId device { id certificateExpiresAt } deviceToken certificate { token keyId issuedAt expiresAt } }
}`;
const checkOutMutation = `mutation { checkOutLicenseCertificate { token keyId issuedAt expiresAt } }`;

interface Activated {
  customerId: string;
  licenseKey: string;
  deviceId: string;
  deviceToken: string;
  certificate: { token: string; keyId: string; issuedAt: string; expiresAt: string };
}

async function activatedDevice(target: TestServer = server, fingerprint = `fp-${crypto.randomBytes(4).toString("hex")}`): Promise<Activated> {
  const customer = await target.createCustomer({ initialSeconds: 0, tier: "PRO" });
  const issued: any = await target.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: customer.id }, target.staffToken);
  const licenseKey: string = issued.data.issueLicense.license.key;
  const activated: any = await target.graphql(activateMutation, { input: { key: licenseKey, device: { fingerprint, name: "Studio Mac" } } });
  const result = activated.data.activateLicense;
  return { customerId: customer.id, licenseKey, deviceId: result.device.id, deviceToken: result.deviceToken, certificate: result.certificate };
}

async function publishedKeys(target: TestServer = server): Promise<JSONWebKeySet> {
  const response = await fetch(`${target.baseUrl}/.well-known/license-keys.json`);
  expect(response.headers.get("cache-control")).toMatch(/^public, max-age=\d+$/);
  return (await response.json()) as JSONWebKeySet;
}

const verify = (token: string, jwks: JSONWebKeySet, currentDate?: Date) =>
  jwtVerify(token, createLocalJWKSet(jwks), { algorithms: ["EdDSA"], issuer, ...(currentDate ? { currentDate } : {}) });

it("comes with an activation that names a device, and verifies with the published key set alone", async () => {
  const device = await activatedDevice();
  const { payload, protectedHeader } = await verify(device.certificate.token, await publishedKeys());
  expect(protectedHeader).toMatchObject({ alg: "EdDSA", kid: device.certificate.keyId });
  const license: any = await server.graphql(`query($id: ID!) { customer(id: $id) { license { id } } }`, { id: device.customerId }, server.staffToken);
  expect(payload).toMatchObject({
    iss: issuer,
    sub: device.deviceId,
    lic: license.data.customer.license.id,
    cus: device.customerId,
    tier: "PRO",
    max: server.config.tiers.PRO.maxDevices,
  });
  expect(typeof payload.fpr).toBe("string");
  expect(payload.exp! - payload.iat!).toBe(server.config.licenses.certificateTtlSeconds);
  expect(new Date(device.certificate.expiresAt).getTime()).toBe(payload.exp! * 1000);
  const answered: any = await server.graphql(activateMutation, { input: { key: device.licenseKey, device: { fingerprint: "fp-second" } } });
  expect(answered.data.activateLicense.device.certificateExpiresAt).toBe(answered.data.activateLicense.certificate.expiresAt);
  const noDevice: any = await server.graphql(activateMutation.replace("device { id certificateExpiresAt } deviceToken ", ""), { input: { key: device.licenseKey } });
  expect(noDevice.data.activateLicense.certificate).toBeNull();
});

it("publishes the same keys through GraphQL, with no token needed", async () => {
  const answer: any = await server.graphql(`{ licenseSigningKeys { keyId jwk } }`);
  const jwks = await publishedKeys();
  expect(answer.data.licenseSigningKeys.map((key: { jwk: string }) => JSON.parse(key.jwk))).toEqual(jwks.keys);
  expect(answer.data.licenseSigningKeys.map((key: { keyId: string }) => key.keyId)).toEqual(jwks.keys.map((key) => key.kid));
  expect(jwks.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
  expect(jwks.keys[0]).not.toHaveProperty("d");
});

it("fails when one byte changes, against another key, after exp, and with alg none", async () => {
  const { certificate } = await activatedDevice();
  const jwks = await publishedKeys();
  const [header, payload, signature] = certificate.token.split(".") as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
  const altered = Buffer.from(JSON.stringify({ ...claims, max: 99 })).toString("base64url");
  await expect(verify(`${header}.${altered}.${signature}`, jwks)).rejects.toBeInstanceOf(errors.JWSSignatureVerificationFailed);
  const flipped = Buffer.from(signature, "base64url");
  flipped[0]! ^= 1;
  await expect(verify(`${header}.${payload}.${flipped.toString("base64url")}`, jwks)).rejects.toBeInstanceOf(errors.JWSSignatureVerificationFailed);

  const { publicKey } = crypto.generateKeyPairSync("ed25519");
  const stranger = { keys: [{ ...publicKey.export({ format: "jwk" }), kid: certificate.keyId, alg: "EdDSA", use: "sig" }] } as JSONWebKeySet;
  await expect(verify(certificate.token, stranger)).rejects.toBeInstanceOf(errors.JWSSignatureVerificationFailed);

  const afterExpiry = new Date(new Date(certificate.expiresAt).getTime() + 1000);
  await expect(verify(certificate.token, jwks, afterExpiry)).rejects.toBeInstanceOf(errors.JWTExpired);

  const unsigned = `${Buffer.from(JSON.stringify({ alg: "none", kid: certificate.keyId })).toString("base64url")}.${payload}.`;
  await expect(verify(unsigned, jwks)).rejects.toThrow();
});

it("checks out a fresh certificate with the device token and refreshes lastSeenAt; staff see when it stops", async () => {
  const device = await activatedDevice();
  server.clock.advanceSeconds(3600);
  const checkedOut: any = await server.graphql(checkOutMutation, {}, device.deviceToken);
  const certificate = checkedOut.data.checkOutLicenseCertificate;
  expect(new Date(certificate.expiresAt).getTime()).toBeGreaterThan(new Date(device.certificate.expiresAt).getTime());
  await verify(certificate.token, await publishedKeys(), new Date(certificate.issuedAt));
  const seen: any = await server.graphql(
    `query($id: ID!) { customer(id: $id) { license { devices { id lastSeenAt certificateExpiresAt } } } }`,
    { id: device.customerId },
    server.staffToken,
  );
  const [seenDevice] = seen.data.customer.license.devices;
  expect(new Date(device.certificate.expiresAt).getTime()).toBeLessThan(new Date(seenDevice.certificateExpiresAt).getTime());
  expect(seenDevice).toMatchObject({ id: device.deviceId, certificateExpiresAt: certificate.expiresAt });
  // iat is whole seconds; lastSeenAt is the checkout's instant.
  expect(Math.floor(new Date(seenDevice.lastSeenAt).getTime() / 1000) * 1000).toBe(new Date(certificate.issuedAt).getTime());
});

it("refuses a checkout after the device or the license was deactivated; the device keeps its certificate until exp", async () => {
  const device = await activatedDevice();
  await server.graphql(`mutation($id: ID!) { deactivateDevice(input: { deviceId: $id }) { id } }`, { id: device.deviceId }, server.staffToken);
  const refused = await server.graphql(checkOutMutation, {}, device.deviceToken);
  expect(refused.errors?.map((error) => error.extensions?.code)).toEqual(["UNAUTHENTICATED"]);
  await verify(device.certificate.token, await publishedKeys());
  const offline: any = await server.graphql(
    `query($id: ID!) { customer(id: $id) { license { devices { id } releasedDevicesStillOffline { id certificateExpiresAt } } } }`,
    { id: device.customerId },
    server.staffToken,
  );
  expect(offline.data.customer.license).toEqual({ devices: [], releasedDevicesStillOffline: [{ id: device.deviceId, certificateExpiresAt: device.certificate.expiresAt }] });

  const other = await activatedDevice();
  await server.graphql(`mutation($key: String!) { deactivateLicense(input: { key: $key, reason: "test" }) { id } }`, { key: other.licenseKey }, server.staffToken);
  const deactivated = await server.graphql(checkOutMutation, {}, other.deviceToken);
  expect(deactivated.errors?.map((error) => error.extensions?.code)).toEqual(["UNAUTHENTICATED"]);
});

it("limits certificates per device and hour, from checkouts and re-activations alike, with Retry-After", async () => {
  const device = await activatedDevice(server, "fp-limited");
  // The activation was the first of 3 certificates this hour.
  for (let checkout = 0; checkout < 2; checkout += 1) expect((await server.graphql(checkOutMutation, {}, device.deviceToken)).errors).toBeUndefined();
  const limited = await server.graphql(checkOutMutation, {}, device.deviceToken);
  expect({ status: limited.status, codes: limited.errors?.map((error) => error.extensions?.code) }).toEqual({ status: 429, codes: ["TOO_MANY_REQUESTS"] });
  expect(limited.headers.get("retry-after")).toBe(String(limited.errors![0]!.extensions!.retryAfterSeconds));
  const reactivated = await server.graphql(activateMutation, { input: { key: device.licenseKey, device: { fingerprint: "fp-limited" } } });
  expect(reactivated.errors?.map((error) => error.extensions?.code)).toEqual(["TOO_MANY_REQUESTS"]);
  const otherDevice = await activatedDevice();
  expect((await server.graphql(checkOutMutation, {}, otherDevice.deviceToken)).errors).toBeUndefined();
});

it("gives a license disputed recently a short certificate", async () => {
  const device = await activatedDevice();
  // What a dispute does to the license (charge.dispute.created, then closed as won); the
  // Stripe tests drive the same calls through webhooks.
  await server.services.transactor.serializable(async (tx) => {
    await server.services.licenses.deactivateInTransaction(tx, device.customerId, "dispute", "stripe:evt_test");
    await server.services.licenses.reactivateInTransaction(tx, device.customerId, "dispute", "stripe:evt_test");
    return { ok: true as const, value: undefined };
  });
  // The deactivation revoked the device's token: it activates again, and gets a short certificate.
  const again: any = await server.graphql(activateMutation, { input: { key: device.licenseKey, device: { fingerprint: "fp-disputed" } } });
  const certificate = again.data.activateLicense.certificate;
  expect(again.data.activateLicense.device.id).toBeTruthy();
  const lifetimeSeconds = (new Date(certificate.expiresAt).getTime() - new Date(certificate.issuedAt).getTime()) / 1000;
  expect(lifetimeSeconds).toBe(server.config.licenses.disputedCertificateTtlSeconds);
});

describe("key rotation", () => {
  it("signs with the first key; certificates of an older key verify while it is published", async () => {
    const oldKey = testSigningKeyPem();
    const newKey = crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const before = await activatedDevice();
    const rotated = await startTestServer({ databaseUrl: server.databaseUrl, environment: { LICENSE_SIGNING_KEYS: `${newKey}\n${oldKey}` } });
    try {
      const jwks = await publishedKeys(rotated);
      expect(jwks.keys).toHaveLength(2);
      expect(jwks.keys[1]!.kid).toBe(before.certificate.keyId);
      await verify(before.certificate.token, jwks);
      const after = await activatedDevice(rotated);
      expect(after.certificate.keyId).toBe(jwks.keys[0]!.kid);
      expect(decodeProtectedHeader(after.certificate.token).kid).not.toBe(before.certificate.keyId);
      await verify(after.certificate.token, jwks);
      await expect(verify(after.certificate.token, await publishedKeys(server))).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    } finally {
      await rotated.close();
    }
  });
});

describe("the reference verifier (scripts/verify-license-certificate.ts)", () => {
  const script = path.resolve(__dirname, "..", "..", "scripts", "verify-license-certificate.ts");
  const run = (args: string[]) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", script, ...args]).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    );

  it("says valid for a certificate from the server, and invalid and why otherwise", async () => {
    const device = await activatedDevice(server, "machine-verifier-1");
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "splice-verify-"));
    const jwksFile = path.join(directory, "license-keys.json");
    fs.writeFileSync(jwksFile, JSON.stringify(await publishedKeys()));
    // The server's test clock runs ahead of this machine's: verify as of the issue time.
    const issued = ["--now", device.certificate.issuedAt];
    const valid = await run([device.certificate.token, jwksFile, "--fingerprint", "machine-verifier-1", ...issued]);
    expect(valid).toMatchObject({ code: 0, stdout: expect.stringMatching(/^valid until \S+\n/) });
    expect((await run([device.certificate.token, jwksFile, ...issued])).stdout).toMatch(/^valid until \S+ \(machine not checked: pass --fingerprint\)\n/);
    expect(await run([device.certificate.token, jwksFile, "--fingerprint", "another-machine", ...issued])).toEqual({ code: 1, stdout: "invalid: issued to another machine (fpr machine-verifier-1)\n" });
    const early = new Date(new Date(device.certificate.issuedAt).getTime() - 120_000).toISOString();
    expect(await run([device.certificate.token, jwksFile, "--now", early])).toEqual({ code: 1, stdout: "invalid: issued in the future (iat)\n" });
    const late = new Date(new Date(device.certificate.expiresAt).getTime() + 1000).toISOString();
    expect(await run([device.certificate.token, jwksFile, "--now", late])).toEqual({ code: 1, stdout: "invalid: expired\n" });
    const [header, payload, signature] = device.certificate.token.split(".");
    const flipped = Buffer.from(signature!, "base64url");
    flipped[10]! ^= 1;
    const tampered = `${header}.${payload}.${flipped.toString("base64url")}`;
    expect((await run([tampered, jwksFile, ...issued])).stdout).toBe("invalid: signature does not verify\n");
    fs.rmSync(directory, { recursive: true });
  });
});

it("bounds swapping devices in and out: seated plus released-but-certified stay within twice the seats", async () => {
  const customer = await server.createCustomer({ initialSeconds: 0, tier: "STARTER" });
  const issued: any = await server.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: customer.id }, server.staffToken);
  const key: string = issued.data.issueLicense.license.key;
  const activate = (fingerprint: string) => server.graphql(activateMutation, { input: { key, device: { fingerprint } } }) as Promise<any>;
  const release = (deviceId: string) => server.graphql(`mutation($id: ID!) { deactivateDevice(input: { deviceId: $id }) { id } }`, { id: deviceId }, server.staffToken);
  const a = await activate("swap-a");
  const b = await activate("swap-b");
  await release(a.data.activateLicense.device.id);
  const c = await activate("swap-c");
  await release(b.data.activateLicense.device.id);
  await activate("swap-d");
  await release(c.data.activateLicense.device.id);
  // One seat is free, but a, b and c still run offline: 1 seated + 3 = 4 = 2 x 2 seats.
  const e = await activate("swap-e");
  expect(e.errors?.map((error: any) => error.extensions.code)).toEqual(["DEVICE_LIMIT_REACHED"]);
  server.clock.advanceSeconds(server.config.licenses.certificateTtlSeconds + 1);
  expect((await activate("swap-e")).data.activateLicense.device.id).toBeTruthy();
});
