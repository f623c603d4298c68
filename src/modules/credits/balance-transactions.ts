// The one way a customer's balance changes: under the customer's lock (CustomerSerializer,
// across instances), one Serializable transaction (retried on conflict) that locks the
// customer's balance row, with its expired reservations settled first. Every use case of the
// credits module (reservations, grants) goes through it.
//
// The customer's reservations are read under the customer's lock but before its transaction:
// every writer of a customer's reservations holds that lock, so the read cannot go stale, and
// reading them inside a Serializable transaction would take predicate locks on index pages
// shared with other customers, so that PostgreSQL aborts unrelated customers' transactions.
import type { Config } from "../../config";
import { assert } from "../../platform/assert";
import type { CustomerSerializer } from "../../platform/customer-serializer";
import type { Database, Transaction, Transactor } from "../../platform/database";
import { fail, succeed, type Failure, type Outcome } from "../../platform/failures";
import type { Mailer } from "../../platform/mailer";
import type { OutboxStore } from "../../platform/outbox/outbox.store";
import type { Pager } from "../../platform/pagination";
import type { RateLimiter } from "../../platform/rate-limiter";
import type { CustomerDirectory } from "../customers";
import * as arithmetic from "./balance";
import type { Balance, LowBalanceAlert } from "./balance";
import type { CreditsStore, ReservationSettlement } from "./credits.store";
import type { LedgerEntryKind, NewLedgerEntry } from "./ledger";
import { expiryReason, type ReservationRecord } from "./reservation";

export interface CreditsDependencies {
  database: Database;
  pager: Pager;
  transactor: Transactor;
  store: CreditsStore;
  customers: CustomerDirectory;
  customerSerializer: CustomerSerializer;
  /** Low-balance emails go through the outbox, written in the balance's transaction. */
  outbox: OutboxStore;
  mailer: Mailer;
  /** Daily windows: low-balance emails per customer (a reserve/release loop must not spam). */
  dailyLimits: RateLimiter;
  config: Config;
  now: () => Date;
}

/** What a transaction on one customer's balance starts from. */
export interface CustomerTransaction {
  tx: Transaction;
  customerId: string;
  balance: Balance;
  /** The low-balance alert as read under the lock. */
  alert: LowBalanceAlert;
  now: Date;
  /** ACTIVE reservations not yet past expiry, before this transaction's own work. */
  unexpiredActiveCount: number;
}

export const lowBalanceEmailJobKind = "low_balance_email";

export const customerNotFound: Failure = { code: "CUSTOMER_NOT_FOUND" };
export const reservationNotFound: Failure = { code: "RESERVATION_NOT_FOUND" };

export const nothingToRead = async (): Promise<undefined> => undefined;

export class BalanceTransactions {
  constructor(private readonly deps: CreditsDependencies) {}

  /**
   * One customer's balance transaction: under the customer's lock, `read` and the customer's
   * ACTIVE reservations are read first, what has expired is settled, then `work` runs in a
   * Serializable transaction that starts by locking the customer's balance row.
   */
  run<T, R>(
    customerId: string,
    read: () => Promise<R>,
    work: (state: CustomerTransaction, read: R) => Promise<Outcome<T>>,
  ): Promise<Outcome<T>> {
    return this.deps.customerSerializer.run(customerId, async () => {
      const now = this.deps.now();
      const active = await this.deps.store.activeReservations(this.deps.database, customerId, now);
      const readValue = await read();
      // Expired reservations are settled in a transaction of their own: that housekeeping is
      // kept even when the operation then fails and its transaction is rolled back.
      const expired = await this.settleExpired(customerId, active.expired, now);
      if (!expired.ok) return expired;
      return this.deps.transactor.serializable(async (tx) => {
        const customer = await this.deps.store.lockBalance(tx, customerId);
        if (!customer) return fail(customerNotFound);
        const state = { tx, customerId, balance: customer.balance, alert: customer.alert, now, unexpiredActiveCount: active.unexpiredCount };
        return work(state, readValue);
      });
    });
  }

  /**
   * Settles, as EXPIRED, ACTIVE reservations past their expiry, one customer per transaction.
   * Safe with several instances sweeping at once: each customer's balance row lock and Serializable
   * isolation let exactly one settle a given reservation; the others find nothing left.
   */
  async sweepExpired(): Promise<number> {
    const { batchSize } = this.deps.config.sweeper;
    const customerIds = await this.deps.store.customersWithExpiredReservations(this.deps.database, this.deps.now(), batchSize);
    let swept = 0;
    for (const customerId of customerIds) {
      const outcome = await this.deps.customerSerializer.run(customerId, async () => {
        const now = this.deps.now();
        const active = await this.deps.store.activeReservations(this.deps.database, customerId, now);
        return this.settleExpired(customerId, active.expired, now);
      });
      if (outcome.ok) swept += 1;
    }
    return swept;
  }

  /** Settles the customer's expired reservations in one transaction; call under the customer's lock. */
  private async settleExpired(customerId: string, expired: ReservationRecord[], now: Date): Promise<Outcome<number>> {
    if (expired.length === 0) return succeed(0);
    return this.deps.transactor.serializable(async (tx) => {
      const customer = await this.deps.store.lockBalance(tx, customerId);
      if (!customer) return fail(customerNotFound);
      await this.expire(tx, customerId, customer.balance, customer.alert, expired, now);
      return succeed(expired.length);
    });
  }

  private async expire(tx: Transaction, customerId: string, start: Balance, alert: LowBalanceAlert, expired: ReservationRecord[], now: Date): Promise<void> {
    let balance = start;
    const entries: NewLedgerEntry[] = [];
    for (const reservation of expired) {
      balance = arithmetic.release(balance, reservation.reservedSeconds);
      await this.settleActive(tx, reservation.id, { status: "EXPIRED", reason: expiryReason, settledAt: now });
      entries.push(ledgerEntry(customerId, "EXPIRE", reservation.reservedSeconds, balance, reservation.id, null, "system"));
    }
    await this.save(tx, customerId, alert, balance);
    await this.deps.store.appendLedger(tx, entries);
  }

  /**
   * Writes a balance locked in this transaction (with its alert state as read under the lock),
   * and queues the low-balance email when the balance has just fallen below the threshold.
   */
  async save(tx: Transaction, customerId: string, alert: LowBalanceAlert, balance: Balance): Promise<void> {
    const next = arithmetic.nextLowBalanceAlert(alert, balance.secondsRemaining);
    await this.deps.store.saveBalance(tx, customerId, balance, next.alert);
    if (!next.fire) return;
    await this.deps.outbox.enqueue(tx, {
      kind: lowBalanceEmailJobKind,
      customerId,
      payload: { customerId, secondsRemaining: balance.secondsRemaining, thresholdSeconds: next.alert.thresholdSeconds },
    });
  }

  /** Reservations change only under their customer's lock; finding one already settled is a bug. */
  async settleActive(tx: Transaction, reservationId: string, settlement: ReservationSettlement): Promise<ReservationRecord> {
    const settled = await this.deps.store.settleReservation(tx, reservationId, settlement);
    assert(settled !== undefined, `reservation ${reservationId} was settled outside its customer's lock`);
    return settled;
  }
}

export function ledgerEntry(
  customerId: string,
  kind: LedgerEntryKind,
  deltaSeconds: number,
  balance: Balance,
  reservationId: string | null,
  note: string | null,
  actor: string,
): NewLedgerEntry {
  return { customerId, kind, deltaSeconds, balanceAfter: balance.secondsRemaining, reservationId, note, actor };
}
