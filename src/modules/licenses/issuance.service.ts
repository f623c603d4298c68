// Issuing licenses: one per customer, created idempotently (by staff or a payment) and mailed
// through the outbox; resending the key.
import { actorOf, type Caller } from "../../platform/auth";
import { ownCustomerId, Policy } from "../../platform/authorization";
import type { Transaction } from "../../platform/database";
import { badInput, fail, succeed, type Outcome } from "../../platform/failures";
import { PermanentJobError } from "../../platform/outbox/outbox.worker";
import { uuidPattern } from "../../platform/validation";
import { licenseEmailJobKind, type LicenseRecord } from "./license";
import { generateLicenseKey } from "./license-key";
import type { IssueResult, LicensesDependencies, Seats } from "./licenses-common";
import { licensesPermissions } from "./licenses.permissions";

const policy = new Policy(licensesPermissions);

export class IssuanceService {
  constructor(
    private readonly deps: LicensesDependencies,
    private readonly seats: Seats,
  ) {}

  async issue(caller: Caller, customerId: string): Promise<Outcome<IssueResult>> {
    const denied = policy.check("Mutation.issueLicense", caller);
    if (denied) return fail(denied);
    if (!uuidPattern.test(customerId)) return fail({ code: "CUSTOMER_NOT_FOUND" });
    return this.deps.customerSerializer.run(customerId, () =>
      this.deps.transactor.once((tx) => this.issueInTransaction(tx, customerId, actorOf(caller))),
    );
  }

  /**
   * The customer's license, created (and its delivery queued) when there is none. Runs in the
   * caller's transaction, so a payment can fulfil it atomically with its other effects.
   */
  async issueInTransaction(tx: Transaction, customerId: string, actor: string): Promise<Outcome<IssueResult>> {
    const existing = await this.deps.store.findByCustomer(tx, customerId);
    if (existing) return succeed({ license: existing, created: false });
    const owner = await this.seats.ownerOf(customerId, tx);
    if (!owner) return fail({ code: "CUSTOMER_NOT_FOUND" });
    const key = await this.unusedKey(tx);
    const license = await this.deps.store.insert(tx, customerId, key, owner.tier);
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
    const limited = await this.deps.hourlyLimits.admit(`resend:${customerId}`, this.deps.config.callerLimits.resendLicensePerHourMax, this.deps.now());
    if (limited) return fail(limited);
    const actor = actorOf(caller);
    return this.deps.customerSerializer.run(customerId, () =>
      this.deps.transactor.once(async (tx) => {
        const issued = await this.issueInTransaction(tx, customerId, actor);
        if (!issued.ok) return issued;
        if (!issued.value.created) await this.queueDelivery(tx, issued.value.license, actor);
        return succeed(issued.value.license);
      }),
    );
  }

  /** Outbox handler: mails the license's current key to the owner's current address. */
  async deliverKey(licenseId: string): Promise<void> {
    const license = await this.deps.store.findById(this.deps.database, licenseId);
    if (!license) throw new PermanentJobError(`license ${licenseId} does not exist`);
    const owner = await this.seats.ownerOf(license.customerId, this.deps.database);
    if (!owner?.email) throw new PermanentJobError(`customer ${license.customerId} has no email address`);
    await this.deps.mailer.send({
      to: owner.email,
      subject: "Your Splice license key",
      text: [
        "Thank you for choosing Splice.",
        "",
        `Your license key: ${license.key}`,
        "",
        "Open the Splice plugin, choose Activate, and enter the key.",
        `It can be active on ${this.seats.of(license)} devices at once.`,
      ].join("\n"),
    });
  }

  private async queueDelivery(tx: Transaction, license: LicenseRecord, actor: string): Promise<void> {
    await this.deps.outbox.enqueue(tx, { kind: licenseEmailJobKind, customerId: license.customerId, payload: { licenseId: license.id } });
    await this.deps.store.appendEvent(tx, { licenseId: license.id, kind: "DELIVERY_QUEUED", actor, reason: null, deviceId: null });
  }

  /** A fresh key: collisions (about 2^-59 each) are retried a bounded number of times. */
  private async unusedKey(tx: Transaction): Promise<string> {
    const attempts = this.deps.config.licenses.keyGenerationAttempts;
    // A failed lookup has aborted the transaction: it goes up to be retried whole, not here.
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      const key = generateLicenseKey();
      if (!(await this.deps.store.keyExists(tx, key))) return key;
    }
    throw new Error(`no unused license key after ${attempts} attempts`);
  }
}
