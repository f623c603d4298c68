// What the licenses module's use cases share: their dependencies, the failures they name, and
// the seats a license has (its owner's tier, read through the customers module).
import type { Config } from "../../config";
import type { CustomerSerializer } from "../../platform/customer-serializer";
import type { Database, DatabaseClient, Transactor } from "../../platform/database";
import type { Failure } from "../../platform/failures";
import type { Mailer } from "../../platform/mailer";
import type { OutboxStore } from "../../platform/outbox/outbox.store";
import type { Pager } from "../../platform/pagination";
import type { RateLimiter } from "../../platform/rate-limiter";
import type { CustomerDirectory, CustomerRecord } from "../customers";
import type { DeviceRecord, LicenseRecord } from "./license";
import type { IssuedCertificate, LicenseSigner } from "./license-signer";
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
  /** An offline certificate for the device, when the call named one. */
  certificate: IssuedCertificate | null;
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
  /** Signs offline license certificates. */
  signer: LicenseSigner;
  config: Config;
  now: () => Date;
}

export const invalidKey: Failure = { code: "INVALID_LICENSE_KEY" };
export const licenseNotFound: Failure = { code: "LICENSE_NOT_FOUND" };

/** The seats of a license: its tier's, from configuration (TIER_*_MAX_DEVICES). */
export class Seats {
  constructor(private readonly deps: LicensesDependencies) {}

  of(license: LicenseRecord): number {
    return this.deps.config.tiers[license.tier].maxDevices;
  }

  /** The owner, read through the customers module: for the tier at issue and the email address. */
  async ownerOf(customerId: string, db: DatabaseClient): Promise<CustomerRecord | undefined> {
    return this.deps.customers.findById(db, customerId);
  }
}
