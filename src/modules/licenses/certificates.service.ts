// Offline license certificates: signed when a device activates and when it checks one out, so
// the plugin can run without a network until the certificate expires. A license disputed
// recently gets shorter certificates, so a charge-back cannot buy a long offline run.
import type { Caller } from "../../platform/auth";
import { assert } from "../../platform/assert";
import { Policy } from "../../platform/authorization";
import type { Transaction } from "../../platform/database";
import { fail, succeed, type Outcome } from "../../platform/failures";
import type { DeviceRecord, LicenseRecord } from "./license";
import { certificateLifetimeSeconds } from "./seats";
import type { IssuedCertificate } from "./license-signer";
import { licenseNotFound, type LicensesDependencies, type Seats } from "./licenses-common";
import { licensesPermissions } from "./licenses.permissions";

const policy = new Policy(licensesPermissions);

export interface PublishedSigningKey {
  keyId: string;
  /** The public key as a JWK, JSON text. */
  jwk: string;
}

export class CertificatesService {
  constructor(
    private readonly deps: LicensesDependencies,
    private readonly seats: Seats,
  ) {}

  /** Signs a certificate for a seated device of an ACTIVE license (locked), in the caller's transaction. */
  async issueInTransaction(tx: Transaction, license: LicenseRecord, device: DeviceRecord, now: Date): Promise<IssuedCertificate> {
    assert(license.status === "ACTIVE" && device.deactivatedAt === null, "certificates only for seated devices of active licenses");
    const certificate = await this.deps.signer.sign(
      {
        deviceId: device.id,
        licenseId: license.id,
        customerId: license.customerId,
        fingerprint: device.fingerprint,
        tier: license.tier,
        maxDevices: this.seats.of(license),
      },
      certificateLifetimeSeconds(license.lastDisputedAt, now, this.deps.config.licenses),
      now,
    );
    await this.deps.store.recordCertificate(tx, device.id, certificate.expiresAt, now);
    return certificate;
  }

  /** Device token only: a fresh certificate for the calling device, which is seen now. */
  async checkOut(caller: Caller): Promise<Outcome<IssuedCertificate>> {
    const denied = policy.check("Mutation.checkOutLicenseCertificate", caller);
    if (denied) return fail(denied);
    assert(caller.kind === "device", "the policy admits device tokens only");
    const known = await this.deps.store.findDevice(this.deps.database, caller.deviceId);
    if (!known) return fail({ code: "UNAUTHENTICATED", message: "Invalid token: device deactivated" });
    const limited = await this.limitFor(known.licenseId, known.fingerprint);
    if (limited) return limited;
    return this.deps.customerSerializer.run(caller.customerId, () =>
      this.deps.transactor.once(async (tx) => {
        const device = await this.deps.store.findDevice(tx, caller.deviceId);
        if (!device || device.deactivatedAt !== null) return fail({ code: "UNAUTHENTICATED", message: "Invalid token: device deactivated" });
        const license = await this.deps.store.lock(tx, device.licenseId);
        if (!license) return fail(licenseNotFound);
        if (license.status === "DEACTIVATED") return fail({ code: "LICENSE_DEACTIVATED" });
        return succeed(await this.issueInTransaction(tx, license, device, this.deps.now()));
      }),
    );
  }

  async signingKeys(): Promise<PublishedSigningKey[]> {
    return (await this.deps.signer.publicKeys()).map((jwk) => ({ keyId: String(jwk.kid), jwk: JSON.stringify(jwk) }));
  }

  /** Certificates per device (license and fingerprint) and hour: checkouts and activations alike. */
  async limitFor(licenseId: string, fingerprint: string): Promise<Outcome<never> | undefined> {
    const max = this.deps.config.callerLimits.certificateCheckoutsPerDevicePerHour;
    const limited = await this.deps.hourlyLimits.admit(`certificate:${licenseId}:${fingerprint}`, max, this.deps.now());
    return limited ? fail(limited) : undefined;
  }
}
