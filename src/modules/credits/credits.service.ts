// The credits module's API, one method per operation, each delegating to its use case:
// reservations (reservations.service.ts), grants and adjustments (grants.service.ts), alerts and
// expiry notices (alerts.service.ts), reads (credits-reads.service.ts), all changing balances
// through balance-transactions.ts, with the grant arithmetic in grant-book.ts.
import type { Caller } from "../../platform/auth";
import type { Transaction } from "../../platform/database";
import type { Outcome } from "../../platform/failures";
import type { Page } from "../../platform/pagination";
import type { CustomerRecord } from "../customers";
import type { Balance, CustomerBalance } from "./balance";
import { AlertsService } from "./alerts.service";
import { BalanceTransactions, type CreditsDependencies } from "./balance-transactions";
import { CreditsReads, type UsageGranularity } from "./credits-reads.service";
import type { UsageBucketRecord } from "./credits.store";
import type { CreditExpiry } from "./grant-book";
import type { GrantRecord } from "./grants.store";
import { GrantsService, type AdjustInput, type GrantDetails } from "./grants.service";
import type { LedgerEntryRecord } from "./ledger";
import type { ReservationRecord, ReservationStatus } from "./reservation";
import { ReservationsService, type ReserveInput, type ReserveResult, type SettleResult } from "./reservations.service";

export type { CreditsDependencies } from "./balance-transactions";
export type { AdjustInput, GrantDetails } from "./grants.service";
export type { ReserveInput, ReserveResult, SettleResult } from "./reservations.service";

export class CreditsService {
  private readonly balances: BalanceTransactions;
  private readonly reservations: ReservationsService;
  private readonly grants: GrantsService;
  private readonly reads: CreditsReads;
  private readonly alerts: AlertsService;

  constructor(deps: CreditsDependencies) {
    this.balances = new BalanceTransactions(deps);
    this.reservations = new ReservationsService(deps, this.balances);
    this.grants = new GrantsService(deps, this.balances);
    this.reads = new CreditsReads(deps);
    this.alerts = new AlertsService(deps, this.balances);
  }

  setLowBalanceAlert(caller: Caller, customerId: string | null | undefined, thresholdSeconds: number | null): Promise<Outcome<CustomerRecord>> {
    return this.alerts.setLowBalanceAlert(caller, customerId, thresholdSeconds);
  }

  lowBalanceThresholdOf(customerId: string): Promise<number | null> {
    return this.alerts.lowBalanceThresholdOf(customerId);
  }

  deliverLowBalanceAlert(payload: Record<string, unknown>): Promise<void> {
    return this.alerts.deliverLowBalanceAlert(payload);
  }

  queueExpiryNotices(): Promise<number> {
    return this.alerts.queueExpiryNotices();
  }

  deliverExpiryNotice(payload: Record<string, unknown>): Promise<void> {
    return this.alerts.deliverExpiryNotice(payload);
  }

  reserve(caller: Caller, input: ReserveInput): Promise<Outcome<ReserveResult>> {
    return this.reservations.reserve(caller, input);
  }

  confirm(caller: Caller, reservationId: string, actualSeconds: number): Promise<Outcome<SettleResult>> {
    return this.reservations.confirm(caller, reservationId, actualSeconds);
  }

  release(caller: Caller, reservationId: string, reason: string | null | undefined): Promise<Outcome<SettleResult>> {
    return this.reservations.release(caller, reservationId, reason);
  }

  adjust(caller: Caller, input: AdjustInput): Promise<Outcome<CustomerRecord>> {
    return this.grants.adjust(caller, input);
  }

  openBalanceInTransaction(tx: Transaction, customerId: string): Promise<void> {
    return this.grants.openBalanceInTransaction(tx, customerId);
  }

  grantInTransaction(tx: Transaction, customerId: string, seconds: number, details: GrantDetails): Promise<Outcome<Balance>> {
    return this.grants.grantInTransaction(tx, customerId, seconds, details);
  }

  takeBackInTransaction(
    tx: Transaction,
    customerId: string,
    seconds: number,
    details: { origins: readonly string[]; actor: string; note: string },
  ): Promise<Outcome<{ takenSeconds: number; balance: Balance }>> {
    return this.grants.takeBackInTransaction(tx, customerId, seconds, details);
  }

  sweepExpired(): Promise<number> {
    return this.balances.sweepExpired();
  }

  reservationCounts(): Promise<{ status: string; count: number }[]> {
    return this.reads.reservationCounts();
  }

  balanceOf(customerId: string): Promise<CustomerBalance> {
    return this.reads.balanceOf(customerId);
  }

  nextExpiryOf(customerId: string): Promise<CreditExpiry | null> {
    return this.reads.nextExpiryOf(customerId);
  }

  grantsOf(customerId: string, includeSpent: boolean, first: number, after: string | null | undefined): Promise<Outcome<Page<GrantRecord>>> {
    return this.reads.grantsOf(customerId, includeSpent, first, after);
  }

  findReservation(caller: Caller, reservationId: string): Promise<Outcome<ReservationRecord | null>> {
    return this.reads.findReservation(caller, reservationId);
  }

  reservationsOf(customerId: string, status: ReservationStatus | null | undefined, first: number, after: string | null | undefined): Promise<Outcome<Page<ReservationRecord>>> {
    return this.reads.reservationsOf(customerId, status, first, after);
  }

  usage(customerId: string, from: Date, to: Date, granularity: UsageGranularity, byEndpoint: boolean): Promise<Outcome<UsageBucketRecord[]>> {
    return this.reads.usage(customerId, from, to, granularity, byEndpoint);
  }

  ledgerOf(customerId: string, first: number, after: string | null | undefined): Promise<Outcome<Page<LedgerEntryRecord>>> {
    return this.reads.ledgerOf(customerId, first, after);
  }
}
