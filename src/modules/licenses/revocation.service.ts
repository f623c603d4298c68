// Revocation: staff deactivate and reactivate licenses, payments' disputes do too, owners free a
// device's seat, and a smaller tier releases the newest devices beyond its seats. Every change
// runs under the owner's lock in one Serializable transaction, with an audit event.
import { actorOf, type Caller } from "../../platform/auth";
import { Policy } from "../../platform/authorization";
import type { Transaction } from "../../platform/database";
import { checkText, uuidPattern } from "../../platform/validation";
import { fail, succeed, type Outcome } from "../../platform/failures";
import type { Tier } from "../customers";
import { disputeReason, type LicenseRecord } from "./license";
import { normaliseLicenseKey } from "./license-key";
import { invalidKey, licenseNotFound, type LicensesDependencies, type Seats } from "./licenses-common";
import { licensesPermissions } from "./licenses.permissions";
import { devicesBeyondSeats } from "./seats";

const policy = new Policy(licensesPermissions);

export class RevocationService {
  constructor(
    private readonly deps: LicensesDependencies,
    private readonly seats: Seats,
  ) {}

  async deactivate(caller: Caller, rawKey: string, reason: string): Promise<Outcome<LicenseRecord>> {
    const denied = policy.check("Mutation.deactivateLicense", caller);
    if (denied) return fail(denied);
    const invalidReason = checkText("reason", reason, this.deps.config.limits.reasonMaxLength, true);
    if (invalidReason) return fail(invalidReason);
    return this.changeLicense(rawKey, (tx, license) => this.applyDeactivation(tx, license, reason, actorOf(caller)));
  }

  async reactivate(caller: Caller, rawKey: string): Promise<Outcome<LicenseRecord>> {
    const denied = policy.check("Mutation.reactivateLicense", caller);
    if (denied) return fail(denied);
    return this.changeLicense(rawKey, (tx, license) => this.applyReactivation(tx, license, actorOf(caller)));
  }

  /** Deactivates the customer's license inside a caller's transaction (a dispute); false when there is none or it already is. */
  async deactivateInTransaction(tx: Transaction, customerId: string, reason: string, actor: string): Promise<boolean> {
    const license = await this.lockedLicenseOf(tx, customerId);
    return license ? this.applyDeactivation(tx, license, reason, actor) : false;
  }

  /** Reactivates the customer's license when it was deactivated for `reason` (a won dispute). */
  async reactivateInTransaction(tx: Transaction, customerId: string, reason: string, actor: string): Promise<boolean> {
    const license = await this.lockedLicenseOf(tx, customerId);
    if (!license || license.deactivationReason !== reason) return false;
    return this.applyReactivation(tx, license, actor);
  }

  /**
   * In the transaction that changed the owner's tier: the license takes the new tier's seats,
   * and devices beyond them give theirs back, newest first (their tokens stop working), so no
   * license holds more devices than seats.
   */
  async enforceSeatsInTransaction(tx: Transaction, customerId: string, tier: Tier, actor: string): Promise<number> {
    const found = await this.deps.store.findByCustomer(tx, customerId);
    if (!found) return 0;
    await this.deps.store.setTier(tx, found.id, tier);
    const license = { ...found, tier };
    const devices = await this.deps.store.seatedDevices(tx, license.id);
    const excess = devicesBeyondSeats(devices, this.seats.of(license));
    for (const device of excess) {
      await this.deps.store.releaseDevice(tx, device.id, this.deps.now());
      await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "DEVICE_DEACTIVATED", actor, reason: "fewer seats in the new tier", deviceId: device.id });
    }
    return excess.length;
  }

  /** Frees the device's seat and revokes its token at once. */
  async deactivateDevice(caller: Caller, deviceId: string): Promise<Outcome<LicenseRecord>> {
    const denied = policy.check("Mutation.deactivateDevice", caller);
    if (denied) return fail(denied);
    const deviceNotFound = fail({ code: "DEVICE_NOT_FOUND" });
    if (!uuidPattern.test(deviceId)) return deviceNotFound;
    const device = await this.deps.store.findDevice(this.deps.database, deviceId);
    const license = device ? await this.deps.store.findById(this.deps.database, device.licenseId) : undefined;
    if (!device || !license) return deviceNotFound;
    const notOwner = policy.checkOwner("Mutation.deactivateDevice", caller, license.customerId);
    if (notOwner) return fail(notOwner === "hidden" ? { code: "DEVICE_NOT_FOUND" } : notOwner);
    return this.deps.customerSerializer.run(license.customerId, () =>
      this.deps.transactor.once(async (tx) => {
        const current = await this.deps.store.findDevice(tx, deviceId);
        if (current && current.deactivatedAt === null) {
          await this.deps.store.releaseDevice(tx, deviceId, this.deps.now());
          await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "DEVICE_DEACTIVATED", actor: actorOf(caller), reason: null, deviceId });
        }
        const updated = await this.deps.store.findById(tx, license.id);
        return updated ? succeed(updated) : fail(licenseNotFound);
      }),
    );
  }

  /** The customer's license, locked and read again under the lock. */
  private async lockedLicenseOf(tx: Transaction, customerId: string): Promise<LicenseRecord | undefined> {
    const license = await this.deps.store.findByCustomer(tx, customerId);
    return license ? this.deps.store.lock(tx, license.id) : undefined;
  }

  /** Deactivates a locked license and revokes its tokens; false when it already was. */
  private async applyDeactivation(tx: Transaction, license: LicenseRecord, reason: string, actor: string): Promise<boolean> {
    if (license.status === "DEACTIVATED") return false;
    await this.deps.store.deactivate(tx, license.id, this.deps.now(), reason, reason === disputeReason);
    await this.deps.store.revokeTokens(tx, license.id);
    await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "DEACTIVATED", actor, reason, deviceId: null });
    return true;
  }

  /** Reactivates a locked license; its old device tokens stay revoked. False when it was active. */
  private async applyReactivation(tx: Transaction, license: LicenseRecord, actor: string): Promise<boolean> {
    if (license.status === "ACTIVE") return false;
    await this.deps.store.reactivate(tx, license.id);
    await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "REACTIVATED", actor, reason: null, deviceId: null });
    return true;
  }

  private async changeLicense(rawKey: string, change: (tx: Transaction, license: LicenseRecord) => Promise<unknown>): Promise<Outcome<LicenseRecord>> {
    const key = normaliseLicenseKey(rawKey);
    if (!key) return fail(invalidKey);
    const found = await this.deps.store.findByKey(this.deps.database, key);
    if (!found) return fail(licenseNotFound);
    return this.deps.customerSerializer.run(found.customerId, () =>
      this.deps.transactor.once(async (tx) => {
        const license = await this.deps.store.lock(tx, found.id);
        if (!license) return fail(licenseNotFound);
        await change(tx, license);
        const updated = await this.deps.store.findById(tx, license.id);
        return updated ? succeed(updated) : fail(licenseNotFound);
      }),
    );
  }
}
