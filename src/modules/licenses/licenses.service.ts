// The rules of licenses: one per customer, issued idempotently and mailed through the outbox;
// activation, where exactly one call per license is the first and exactly maxDevices devices
// hold seats however many race; device tokens; deactivation with an audit trail.
//
// Every change runs under the owner's lock (CustomerSerializer, across instances) in one
// Serializable transaction with retry, like the credits module's.
import type { Config } from "../../config";
import { actorOf, type Caller } from "../../platform/auth";
import { ownCustomerId, Policy } from "../../platform/authorization";
import type { CustomerSerializer } from "../../platform/customer-serializer";
import { assert } from "../../platform/assert";
import type { Database, DatabaseClient, Transaction, Transactor } from "../../platform/database";
import { badInput, fail, succeed, type Failure, type Outcome } from "../../platform/failures";
import type { Mailer } from "../../platform/mailer";
import type { OutboxStore } from "../../platform/outbox/outbox.store";
import { PermanentJobError } from "../../platform/outbox/outbox.worker";
import type { Page, Pager } from "../../platform/pagination";
import type { RateLimiter } from "../../platform/rate-limiter";
import { checkText, uuidPattern } from "../../platform/validation";
import type { CustomerDirectory, CustomerRecord } from "../customers";
import { generateDeviceToken, hashDeviceToken, isDeviceToken } from "./device-token";
import { licenseEmailJobKind, type DeviceRecord, type LicenseEventRecord, type LicenseRecord } from "./license";
import { generateLicenseKey, normaliseLicenseKey } from "./license-key";
import { licensesPermissions } from "./licenses.permissions";
import type { LicensesStore } from "./licenses.store";

export interface IssueResult {
  license: LicenseRecord;
  created: boolean;
}

export interface ActivationResult {
  customerId: string;
  alreadyActivated: boolean;
  activatedAt: Date;
  license: LicenseRecord;
  device: DeviceRecord | null;
  deviceToken: string | null;
}

export interface DeviceInput {
  fingerprint: string;
  name?: string | null;
}

export interface LicensesDependencies {
  database: Database;
  pager: Pager;
  transactor: Transactor;
  store: LicensesStore;
  customers: CustomerDirectory;
  outbox: OutboxStore;
  customerSerializer: CustomerSerializer;
  activationFailures: RateLimiter;
  /** Hourly windows, for resends (each sends an email). */
  hourlyLimits: RateLimiter;
  mailer: Mailer;
  config: Config;
  now: () => Date;
}

const invalidKey: Failure = { code: "INVALID_LICENSE_KEY" };
const licenseNotFound: Failure = { code: "LICENSE_NOT_FOUND" };
const fingerprintPattern = /^[\x21-\x7E]+$/;

const policy = new Policy(licensesPermissions);

export class LicensesService {
  /** Activations by outcome (ok, first, or the failure's code), for metrics. */
  readonly activationOutcomes = new Map<string, number>();

  constructor(private readonly deps: LicensesDependencies) {}

  async issue(caller: Caller, customerId: string): Promise<Outcome<IssueResult>> {
    const denied = policy.check("Mutation.issueLicense", caller);
    if (denied) return fail(denied);
    if (!uuidPattern.test(customerId)) return fail({ code: "CUSTOMER_NOT_FOUND" });
    return this.deps.customerSerializer.run(customerId, () =>
      this.deps.transactor.serializable((tx) => this.issueInTransaction(tx, customerId, actorOf(caller))),
    );
  }

  /**
   * The customer's license, created (and its delivery queued) when there is none. Runs in the
   * caller's transaction, so a payment can fulfil it atomically with its other effects.
   */
  async issueInTransaction(tx: Transaction, customerId: string, actor: string): Promise<Outcome<IssueResult>> {
    const existing = await this.deps.store.findByCustomer(tx, customerId);
    if (existing) return succeed({ license: existing, created: false });
    if (!(await this.deps.customers.findById(tx, customerId))) return fail({ code: "CUSTOMER_NOT_FOUND" });
    const key = await this.unusedKey(tx);
    const license = await this.deps.store.insert(tx, customerId, key);
    await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "ISSUED", actor, reason: null, deviceId: null });
    await this.queueDelivery(tx, license, actor);
    return succeed({ license, created: true });
  }

  /** Sends the key again, issuing a license first when the customer has none. */
  async resend(caller: Caller, requestedCustomerId: string | null | undefined): Promise<Outcome<LicenseRecord>> {
    const denied = policy.check("Mutation.resendLicense", caller);
    if (denied) return fail(denied);
    const customerId = requestedCustomerId ?? ownCustomerId(caller);
    if (!customerId) return badInput("customerId", "staff must name customerId");
    const notOwner = policy.checkOwner("Mutation.resendLicense", caller, customerId);
    if (notOwner) return fail(notOwner === "hidden" ? { code: "CUSTOMER_NOT_FOUND" } : notOwner);
    if (!uuidPattern.test(customerId)) return fail({ code: "CUSTOMER_NOT_FOUND" });
    const limited = await this.hourlyLimit(`resend:${customerId}`, this.deps.config.callerLimits.resendLicensePerHourMax);
    if (limited) return fail(limited);
    const actor = actorOf(caller);
    return this.deps.customerSerializer.run(customerId, () =>
      this.deps.transactor.serializable(async (tx) => {
        const issued = await this.issueInTransaction(tx, customerId, actor);
        if (!issued.ok) return issued;
        if (!issued.value.created) await this.queueDelivery(tx, issued.value.license, actor);
        return succeed(issued.value.license);
      }),
    );
  }

  /** Needs no token: the key is the credential. Failed guesses are rate-limited per address and key. */
  async activate(clientAddress: string, rawKey: string, device: DeviceInput | null | undefined): Promise<Outcome<ActivationResult>> {
    const outcome = await this.activateOnce(clientAddress, rawKey, device);
    const label = outcome.ok ? (outcome.value.alreadyActivated ? "ok" : "first") : outcome.failure.code;
    this.activationOutcomes.set(label, (this.activationOutcomes.get(label) ?? 0) + 1);
    return outcome;
  }

  /**
   * Failed guesses are limited per client address and per key. A request whose buckets are
   * already at their limits is refused before anything is looked up. A failed guess is counted
   * and checked in one statement (increment, then compare what it returns), so however many
   * guesses race, exactly the limit are answered as failed guesses and the rest
   * TOO_MANY_REQUESTS. Requests that race past the first check are still looked up: a correct
   * key among them activates. Successful activations are never counted, so a storm of real
   * activations is never refused.
   */
  private async activateOnce(clientAddress: string, rawKey: string, device: DeviceInput | null | undefined): Promise<Outcome<ActivationResult>> {
    const now = this.deps.now();
    const limits = this.deps.config.licenses;
    const addressBucket = { name: `activation:address:${clientAddress}`, max: limits.activationFailuresPerAddressMax };
    const limited = await this.activationLimited(addressBucket.name, now, addressBucket.max);
    if (limited) return fail(limited);
    const key = normaliseLicenseKey(rawKey);
    if (!key) return this.failedGuess([addressBucket], now, invalidKey);
    const keyBucket = { name: `activation:key:${key}`, max: limits.activationFailuresPerKeyMax };
    const keyLimited = await this.activationLimited(keyBucket.name, now, keyBucket.max);
    if (keyLimited) return fail(keyLimited);
    const invalidDevice = device ? this.checkDevice(device) : undefined;
    if (invalidDevice) return fail(invalidDevice);
    const found = await this.deps.store.findByKey(this.deps.database, key);
    if (!found) return this.failedGuess([addressBucket, keyBucket], now, licenseNotFound);
    return this.deps.customerSerializer.run(found.customerId, () =>
      this.deps.transactor.serializable((tx) => this.activateInTransaction(tx, found.id, device ?? null)),
    );
  }

  /** Counts a failed guess in each bucket; past any bucket's limit the answer is TOO_MANY_REQUESTS. */
  private async failedGuess(buckets: { name: string; max: number }[], now: Date, failure: Failure): Promise<Outcome<never>> {
    const counts = await Promise.all(buckets.map((bucket) => this.deps.activationFailures.hit(bucket.name, now)));
    const over = buckets.find((bucket, index) => counts[index]! > bucket.max);
    if (!over) return fail(failure);
    return fail({ code: "TOO_MANY_REQUESTS", retryAfterSeconds: await this.deps.activationFailures.retryAfterSeconds(over.name, now) });
  }

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
   * After the owner's tier changed: devices beyond the tier's seats give theirs back, newest
   * first (their tokens stop working), so no license holds more devices than seats.
   */
  async enforceSeatsInTransaction(tx: Transaction, customerId: string, actor: string): Promise<number> {
    const license = await this.deps.store.findByCustomer(tx, customerId);
    if (!license) return 0;
    const devices = await this.deps.store.seatedDevices(tx, license.id);
    const excess = devices.slice(await this.maxDevicesOf(license, tx)).reverse();
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
      this.deps.transactor.serializable(async (tx) => {
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

  /** The caller a device token names, checked on every request so revocation is immediate. */
  async authenticateDevice(token: string): Promise<Caller> {
    if (!isDeviceToken(token)) return { kind: "rejected", reason: "unknown token" };
    const found = await this.deps.store.deviceByTokenHash(this.deps.database, hashDeviceToken(token));
    return found ? { kind: "device", customerId: found.customerId, deviceId: found.deviceId } : { kind: "rejected", reason: "device token revoked or unknown" };
  }

  async licenseOf(customerId: string): Promise<LicenseRecord | null> {
    return (await this.deps.store.findByCustomer(this.deps.database, customerId)) ?? null;
  }

  async customerIdForKey(rawKey: string): Promise<string | undefined> {
    const key = normaliseLicenseKey(rawKey);
    return key ? (await this.deps.store.findByKey(this.deps.database, key))?.customerId : undefined;
  }

  seatedDevices(licenseId: string): Promise<DeviceRecord[]> {
    return this.deps.store.seatedDevices(this.deps.database, licenseId);
  }

  /** The owner's tier decides the seats: read through the customers module, in `db`'s transaction when given. */
  async maxDevicesOf(license: LicenseRecord, db: DatabaseClient = this.deps.database): Promise<number> {
    return this.deps.config.tiers[(await this.ownerOf(license, db)).tier].maxDevices;
  }

  private async ownerOf(license: LicenseRecord, db: DatabaseClient): Promise<CustomerRecord> {
    const owner = await this.deps.customers.findById(db, license.customerId);
    assert(owner, `license ${license.id} has no owner ${license.customerId}`);
    return owner;
  }

  async auditTrail(caller: Caller, licenseId: string, first: number, after: string | null | undefined): Promise<Outcome<Page<LicenseEventRecord>>> {
    const denied = policy.check("License.auditTrail", caller);
    if (denied) return fail(denied);
    const page = this.deps.pager.request("license-event", licenseId, first, after);
    if (!page.ok) return page;
    const rows = await this.deps.store.events(this.deps.database, licenseId, page.value);
    return succeed(this.deps.pager.page("license-event", licenseId, rows, page.value, (row) => row.id));
  }

  /** Outbox handler: mails the license's current key to the owner's current address. */
  async deliverKey(licenseId: string): Promise<void> {
    const license = await this.deps.store.findById(this.deps.database, licenseId);
    if (!license) throw new PermanentJobError(`license ${licenseId} does not exist`);
    const owner = await this.ownerOf(license, this.deps.database);
    if (!owner.email) throw new PermanentJobError(`customer ${license.customerId} has no email address`);
    await this.deps.mailer.send({
      to: owner.email,
      subject: "Your Splice license key",
      text: [
        "Thank you for choosing Splice.",
        "",
        `Your license key: ${license.key}`,
        "",
        "Open the Splice plugin, choose Activate, and enter the key.",
        `It can be active on ${await this.maxDevicesOf(license)} devices at once.`,
      ].join("\n"),
    });
  }

  private async activateInTransaction(tx: Transaction, licenseId: string, device: DeviceInput | null): Promise<Outcome<ActivationResult>> {
    const license = await this.deps.store.lock(tx, licenseId);
    if (!license) return fail(licenseNotFound);
    if (license.status === "DEACTIVATED") return fail({ code: "LICENSE_DEACTIVATED" });
    const now = this.deps.now();
    const seated = device ? await this.seat(tx, license, device, now) : succeed(undefined);
    if (!seated.ok) return seated;
    // Set once, by the first call that got this far; never changed (a trigger guards that too).
    const alreadyActivated = license.activatedAt !== null;
    const activatedAt = license.activatedAt ?? now;
    if (!alreadyActivated) {
      await this.deps.store.setActivatedAt(tx, license.id, activatedAt);
      const actor = seated.value ? `device:${seated.value.device.id}` : "system";
      await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "ACTIVATED", actor, reason: null, deviceId: seated.value?.device.id ?? null });
    }
    return succeed({
      customerId: license.customerId,
      alreadyActivated,
      activatedAt,
      license: { ...license, activatedAt },
      device: seated.value?.device ?? null,
      deviceToken: seated.value?.token ?? null,
    });
  }

  /** The device's seat: refreshed (with a new token) when it has one, taken when one is free. */
  private async seat(tx: Transaction, license: LicenseRecord, input: DeviceInput, now: Date): Promise<Outcome<{ device: DeviceRecord; token: string }>> {
    const devices = await this.deps.store.seatedDevices(tx, license.id);
    const { token, tokenHash } = generateDeviceToken();
    const name = input.name ?? null;
    const existing = devices.find((device) => device.fingerprint === input.fingerprint);
    if (existing) {
      return succeed({ device: await this.deps.store.refreshDevice(tx, existing.id, name, tokenHash, now), token });
    }
    const maxDevices = await this.maxDevicesOf(license, tx);
    if (devices.length >= maxDevices) return fail({ code: "DEVICE_LIMIT_REACHED", maxDevices });
    const device = await this.deps.store.seatDevice(tx, license.id, input.fingerprint, name, tokenHash, now);
    await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "DEVICE_ACTIVATED", actor: `device:${device.id}`, reason: null, deviceId: device.id });
    return succeed({ device, token });
  }

  /** The customer's license, locked and read again under the lock. */
  private async lockedLicenseOf(tx: Transaction, customerId: string): Promise<LicenseRecord | undefined> {
    const license = await this.deps.store.findByCustomer(tx, customerId);
    return license ? this.deps.store.lock(tx, license.id) : undefined;
  }

  /** Deactivates a locked license and revokes its tokens; false when it already was. */
  private async applyDeactivation(tx: Transaction, license: LicenseRecord, reason: string, actor: string): Promise<boolean> {
    if (license.status === "DEACTIVATED") return false;
    await this.deps.store.deactivate(tx, license.id, this.deps.now(), reason);
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
      this.deps.transactor.serializable(async (tx) => {
        const license = await this.deps.store.lock(tx, found.id);
        if (!license) return fail(licenseNotFound);
        await change(tx, license);
        const updated = await this.deps.store.findById(tx, license.id);
        return updated ? succeed(updated) : fail(licenseNotFound);
      }),
    );
  }

  private async queueDelivery(tx: Transaction, license: LicenseRecord, actor: string): Promise<void> {
    await this.deps.outbox.enqueue(tx, { kind: licenseEmailJobKind, customerId: license.customerId, payload: { licenseId: license.id } });
    await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "DELIVERY_QUEUED", actor, reason: null, deviceId: null });
  }

  /** A fresh key: collisions (about 2^-59 each) and generator failures are retried a bounded number of times. */
  private async unusedKey(tx: Transaction): Promise<string> {
    const attempts = this.deps.config.licenses.keyGenerationAttempts;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        const key = generateLicenseKey();
        if (!(await this.deps.store.keyExists(tx, key))) return key;
      } catch (error) {
        if (attempt === attempts) throw error;
      }
    }
    throw new Error(`no unused license key after ${attempts} attempts`);
  }

  private checkDevice(device: DeviceInput): Failure | undefined {
    const { fingerprintMaxLength, deviceNameMaxLength } = this.deps.config.licenses;
    if (device.fingerprint.length < 1 || device.fingerprint.length > fingerprintMaxLength || !fingerprintPattern.test(device.fingerprint)) {
      return { code: "BAD_USER_INPUT", field: "fingerprint", message: `fingerprint must be 1 to ${fingerprintMaxLength} printable ASCII characters` };
    }
    return checkText("name", device.name, deviceNameMaxLength, false);
  }

  private async hourlyLimit(bucket: string, max: number): Promise<Failure | undefined> {
    const now = this.deps.now();
    if ((await this.deps.hourlyLimits.hit(bucket, now)) <= max) return undefined;
    return { code: "TOO_MANY_REQUESTS", retryAfterSeconds: await this.deps.hourlyLimits.retryAfterSeconds(bucket, now) };
  }

  private async activationLimited(bucket: string, now: Date, max: number): Promise<Failure | undefined> {
    if ((await this.deps.activationFailures.count(bucket, now)) < max) return undefined;
    return { code: "TOO_MANY_REQUESTS", retryAfterSeconds: await this.deps.activationFailures.retryAfterSeconds(bucket, now) };
  }
}
