// The licenses module's API, one method per operation, each delegating to its use case:
// issuance (issuance.service.ts), activation (activation.service.ts), offline certificates
// (certificates.service.ts), revocation (revocation.service.ts) and reads
// (licenses-reads.service.ts).
//
// Every change runs under the owner's lock (CustomerSerializer, across instances) in one
// Serializable transaction with retry, like the credits module's.
import type { Caller } from "../../platform/auth";
import type { Transaction } from "../../platform/database";
import type { Tier } from "../customers";
import type { Outcome } from "../../platform/failures";
import type { Page } from "../../platform/pagination";
import { ActivationService } from "./activation.service";
import { CertificatesService, type PublishedSigningKey } from "./certificates.service";
import { IssuanceService } from "./issuance.service";
import type { DeviceRecord, LicenseEventRecord, LicenseRecord } from "./license";
import type { IssuedCertificate } from "./license-signer";
import { Seats, type ActivationResult, type DeviceInput, type IssueResult, type LicensesDependencies } from "./licenses-common";
import { LicensesReads } from "./licenses-reads.service";
import { RevocationService } from "./revocation.service";

export type { ActivationResult, DeviceInput, IssueResult, LicensesDependencies } from "./licenses-common";

export class LicensesService {
  private readonly seats: Seats;
  private readonly issuance: IssuanceService;
  private readonly activation: ActivationService;
  private readonly certificates: CertificatesService;
  private readonly revocation: RevocationService;
  private readonly reads: LicensesReads;

  constructor(deps: LicensesDependencies) {
    this.seats = new Seats(deps);
    this.issuance = new IssuanceService(deps, this.seats);
    this.certificates = new CertificatesService(deps, this.seats);
    this.activation = new ActivationService(deps, this.seats, this.certificates);
    this.revocation = new RevocationService(deps, this.seats);
    this.reads = new LicensesReads(deps);
  }

  /** Activations by outcome (ok, first, or the failure's code), for metrics. */
  get activationOutcomes(): ReadonlyMap<string, number> {
    return this.activation.activationOutcomes;
  }

  issue(caller: Caller, customerId: string): Promise<Outcome<IssueResult>> {
    return this.issuance.issue(caller, customerId);
  }

  issueInTransaction(tx: Transaction, customerId: string, actor: string): Promise<Outcome<IssueResult>> {
    return this.issuance.issueInTransaction(tx, customerId, actor);
  }

  resend(caller: Caller, requestedCustomerId: string | null | undefined): Promise<Outcome<LicenseRecord>> {
    return this.issuance.resend(caller, requestedCustomerId);
  }

  deliverKey(licenseId: string): Promise<void> {
    return this.issuance.deliverKey(licenseId);
  }

  activate(clientAddress: string, rawKey: string, device: DeviceInput | null | undefined): Promise<Outcome<ActivationResult>> {
    return this.activation.activate(clientAddress, rawKey, device);
  }

  checkOutCertificate(caller: Caller): Promise<Outcome<IssuedCertificate>> {
    return this.certificates.checkOut(caller);
  }

  signingKeys(): Promise<PublishedSigningKey[]> {
    return this.certificates.signingKeys();
  }

  authenticateDevice(token: string): Promise<Caller> {
    return this.activation.authenticateDevice(token);
  }

  deactivate(caller: Caller, rawKey: string, reason: string): Promise<Outcome<LicenseRecord>> {
    return this.revocation.deactivate(caller, rawKey, reason);
  }

  reactivate(caller: Caller, rawKey: string): Promise<Outcome<LicenseRecord>> {
    return this.revocation.reactivate(caller, rawKey);
  }

  deactivateInTransaction(tx: Transaction, customerId: string, reason: string, actor: string): Promise<boolean> {
    return this.revocation.deactivateInTransaction(tx, customerId, reason, actor);
  }

  reactivateInTransaction(tx: Transaction, customerId: string, reason: string, actor: string): Promise<boolean> {
    return this.revocation.reactivateInTransaction(tx, customerId, reason, actor);
  }

  enforceSeatsInTransaction(tx: Transaction, customerId: string, tier: Tier, actor: string): Promise<number> {
    return this.revocation.enforceSeatsInTransaction(tx, customerId, tier, actor);
  }

  deactivateDevice(caller: Caller, deviceId: string): Promise<Outcome<LicenseRecord>> {
    return this.revocation.deactivateDevice(caller, deviceId);
  }

  licenseOf(customerId: string): Promise<LicenseRecord | null> {
    return this.reads.licenseOf(customerId);
  }

  customerIdForKey(rawKey: string): Promise<string | undefined> {
    return this.reads.customerIdForKey(rawKey);
  }

  seatedDevices(licenseId: string): Promise<DeviceRecord[]> {
    return this.reads.seatedDevices(licenseId);
  }

  maxDevicesOf(license: LicenseRecord): number {
    return this.seats.of(license);
  }

  releasedDevicesStillOffline(licenseId: string): Promise<DeviceRecord[]> {
    return this.reads.releasedDevicesStillOffline(licenseId);
  }

  auditTrail(caller: Caller, licenseId: string, first: number, after: string | null | undefined): Promise<Outcome<Page<LicenseEventRecord>>> {
    return this.reads.auditTrail(caller, licenseId, first, after);
  }
}
