// Activation: the key is the credential. Exactly one call per license is the first, and exactly
// maxDevices devices hold seats however many race; each seated device gets an opaque token.
// Failed guesses are rate-limited per client address and per key.
import type { Caller } from "../../platform/auth";
import type { Transaction } from "../../platform/database";
import { fail, succeed, type Failure, type Outcome } from "../../platform/failures";
import { checkText } from "../../platform/validation";
import { generateDeviceToken, hashDeviceToken, isDeviceToken } from "./device-token";
import type { DeviceRecord, LicenseRecord } from "./license";
import { normaliseLicenseKey } from "./license-key";
import { invalidKey, licenseNotFound, type ActivationResult, type DeviceInput, type LicensesDependencies, type Seats } from "./licenses-common";
import type { CertificatesService } from "./certificates.service";
import { hasFreeOfflineRoom, hasFreeSeat } from "./seats";

const laterOf = (stored: Date | null, issued: Date | undefined): Date | null =>
  !issued ? stored : !stored || issued.getTime() > stored.getTime() ? issued : stored;

const fingerprintPattern = /^[\x21-\x7E]+$/;

export class ActivationService {
  /** Activations by outcome (ok, first, or the failure's code), for metrics. */
  readonly activationOutcomes = new Map<string, number>();

  constructor(
    private readonly deps: LicensesDependencies,
    private readonly seats: Seats,
    private readonly certificates: CertificatesService,
  ) {}

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
    // Each activation with a device hands out a certificate: counted with the device's checkouts.
    const certificatesLimited = device ? await this.certificates.limitFor(found.id, device.fingerprint) : undefined;
    if (certificatesLimited) return certificatesLimited;
    return this.deps.customerSerializer.run(found.customerId, () =>
      this.deps.transactor.once((tx) => this.activateInTransaction(tx, found.id, device ?? null)),
    );
  }

  /** Counts a failed guess in each bucket; past any bucket's limit the answer is TOO_MANY_REQUESTS. */
  private async failedGuess(buckets: { name: string; max: number }[], now: Date, failure: Failure): Promise<Outcome<never>> {
    const counts = await Promise.all(buckets.map((bucket) => this.deps.activationFailures.hit(bucket.name, now)));
    const over = buckets.find((bucket, index) => counts[index]! > bucket.max);
    if (!over) return fail(failure);
    return fail({ code: "TOO_MANY_REQUESTS", retryAfterSeconds: await this.deps.activationFailures.retryAfterSeconds(over.name, now) });
  }

  /** The caller a device token names, checked on every request so revocation is immediate. */
  async authenticateDevice(token: string): Promise<Caller> {
    if (!isDeviceToken(token)) return { kind: "rejected", reason: "unknown token" };
    const found = await this.deps.store.deviceByTokenHash(this.deps.database, hashDeviceToken(token));
    return found ? { kind: "device", customerId: found.customerId, deviceId: found.deviceId } : { kind: "rejected", reason: "device token revoked or unknown" };
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
    const certificate = seated.value ? await this.certificates.issueInTransaction(tx, license, seated.value.device, now) : null;
    const seatedDevice = seated.value ? { ...seated.value.device, certificateExpiresAt: laterOf(seated.value.device.certificateExpiresAt, certificate?.expiresAt) } : null;
    return succeed({
      customerId: license.customerId,
      alreadyActivated,
      activatedAt,
      license: { ...license, activatedAt },
      device: seatedDevice,
      deviceToken: seated.value?.token ?? null,
      certificate,
    });
  }

  /** The device's seat: refreshed (with a new token) when it has one, taken when one is free. */
  private async seat(tx: Transaction, license: LicenseRecord, input: DeviceInput, now: Date): Promise<Outcome<{ device: DeviceRecord; token: string }>> {
    // One read of the license's devices (seated, and released but still certified): one range
    // of the device index under Serializable's predicate locks, as before certificates.
    const onLicense = await this.deps.store.devicesSeatedOrCertified(tx, license.id, now);
    const devices = onLicense.filter((device) => device.deactivatedAt === null);
    const stillOfflineCount = onLicense.length - devices.length;
    const { token, tokenHash } = generateDeviceToken();
    const name = input.name ?? null;
    const existing = devices.find((device) => device.fingerprint === input.fingerprint);
    if (existing) {
      return succeed({ device: await this.deps.store.refreshDevice(tx, existing.id, name, tokenHash, now), token });
    }
    const maxDevices = this.seats.of(license);
    if (!hasFreeSeat(devices.length, maxDevices)) return fail({ code: "DEVICE_LIMIT_REACHED", maxDevices });
    // A device that gave its seat back may still run offline on its certificate: swapping
    // devices in and out is bounded, so a license's seats cannot cover unlimited machines.
    if (!hasFreeOfflineRoom(devices.length, stillOfflineCount, maxDevices, this.deps.config.licenses.offlineDevicesPerSeat)) {
      return fail({ code: "DEVICE_LIMIT_REACHED", maxDevices });
    }
    const device = await this.deps.store.seatDevice(tx, license.id, input.fingerprint, name, tokenHash, now);
    await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "DEVICE_ACTIVATED", actor: `device:${device.id}`, reason: null, deviceId: device.id });
    return succeed({ device, token });
  }

  private checkDevice(device: DeviceInput): Failure | undefined {
    const { fingerprintMaxLength, deviceNameMaxLength } = this.deps.config.licenses;
    if (device.fingerprint.length < 1 || device.fingerprint.length > fingerprintMaxLength || !fingerprintPattern.test(device.fingerprint)) {
      return { code: "BAD_USER_INPUT", field: "fingerprint", message: `fingerprint must be 1 to ${fingerprintMaxLength} printable ASCII characters` };
    }
    return checkText("name", device.name, deviceNameMaxLength, false);
  }

  private async activationLimited(bucket: string, now: Date, max: number): Promise<Failure | undefined> {
    if ((await this.deps.activationFailures.count(bucket, now)) < max) return undefined;
    return { code: "TOO_MANY_REQUESTS", retryAfterSeconds: await this.deps.activationFailures.retryAfterSeconds(bucket, now) };
  }
}
