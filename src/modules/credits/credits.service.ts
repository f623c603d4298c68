// The rules of credits: reserve, confirm, release, adjust, expire. Every change of a balance
// runs under the customer's lock (CustomerSerializer, across instances) in one Serializable
// transaction (retried on conflict) that locks the customer's row, settles its expired
// reservations first, decides with the pure arithmetic in balance.ts, and writes the balance,
// the reservation and the ledger entry together.
//
// The customer's reservations are read under the customer's lock but before its transaction:
// every writer of a customer's reservations holds that lock, so the read cannot go stale, and
// reading them inside a Serializable transaction would take predicate locks on index pages
// shared with other customers, so that PostgreSQL aborts unrelated customers' transactions.
import type { Config } from "../../config";
import { assert } from "../../platform/assert";
import { actorOf, type Caller } from "../../platform/auth";
import { ownCustomerId, Policy } from "../../platform/authorization";
import { creditsPermissions } from "./credits.permissions";
import type { Database, Transaction, Transactor } from "../../platform/database";
import { fail, succeed, type Failure, type Outcome } from "../../platform/failures";
import type { CustomerSerializer } from "../../platform/customer-serializer";
import type { Page, Pager } from "../../platform/pagination";
import type { CustomerDirectory, CustomerRecord } from "../customers";
import * as arithmetic from "./balance";
import type { Balance } from "./balance";
import type { CreditsStore, ReservationSettlement } from "./credits.store";
import { checkText, firstFailure, uuidPattern } from "../../platform/validation";
import { checkAdjustment, checkEndpoint, checkIdempotencyKey, checkSeconds } from "./credits.validation";
import type { LedgerEntryKind, LedgerEntryRecord, NewLedgerEntry } from "./ledger";
import { expiryReason, presentReservation, type ReservationRecord, type ReservationStatus } from "./reservation";

export interface ReserveResult {
  reservation: ReservationRecord;
  balance: Balance;
  replayed: boolean;
}

export interface SettleResult {
  reservation: ReservationRecord;
  balance: Balance;
}

export interface ReserveInput {
  customerId?: string | null;
  estimatedSeconds: number;
  endpoint: string;
  idempotencyKey?: string | null;
}

export interface GrantDetails {
  kind: Extract<LedgerEntryKind, "GRANT" | "ADJUSTMENT">;
  actor: string;
  note: string | null;
}

export interface CreditsDependencies {
  database: Database;
  pager: Pager;
  transactor: Transactor;
  store: CreditsStore;
  customers: CustomerDirectory;
  customerSerializer: CustomerSerializer;
  config: Config;
  now: () => Date;
}

/** What a transaction on one customer's balance starts from. */
interface CustomerTransaction {
  tx: Transaction;
  customerId: string;
  balance: Balance;
  now: Date;
  /** ACTIVE reservations not yet past expiry, before this transaction's own work. */
  unexpiredActiveCount: number;
}

const activeLimitRetryAfterSeconds = 5;
const customerNotFound: Failure = { code: "CUSTOMER_NOT_FOUND" };
const reservationNotFound: Failure = { code: "RESERVATION_NOT_FOUND" };

const policy = new Policy(creditsPermissions);

export class CreditsService {
  constructor(private readonly deps: CreditsDependencies) {}

  private get limits() {
    return { ...this.deps.config.limits, ...this.deps.config.credits };
  }

  async reserve(caller: Caller, input: ReserveInput): Promise<Outcome<ReserveResult>> {
    const target = this.reservingCustomer(caller, input.customerId);
    if (!target.ok) return target;
    const invalid = firstFailure(
      checkSeconds("estimatedSeconds", input.estimatedSeconds, 1, this.limits.reservationMaxSeconds),
      checkEndpoint(input.endpoint, this.limits),
      checkIdempotencyKey(input.idempotencyKey, this.limits),
    );
    if (invalid) return fail(invalid);
    const idempotencyKey = input.idempotencyKey ?? null;
    const customerId = target.value;
    const findEarlier = () =>
      idempotencyKey === null
        ? Promise.resolve(undefined)
        : this.deps.store.findReservationByIdempotencyKey(this.deps.database, customerId, idempotencyKey);
    return this.inCustomerTransaction(customerId, findEarlier, async ({ tx, balance, now, unexpiredActiveCount }, earlier) => {
      if (earlier) return this.replayReservation(earlier, input, balance, now);
      if (unexpiredActiveCount >= this.limits.activeReservationsPerCustomerMax) {
        return fail({ code: "TOO_MANY_REQUESTS", retryAfterSeconds: activeLimitRetryAfterSeconds });
      }
      const after = arithmetic.reserve(balance, input.estimatedSeconds);
      if (!after) return fail({ code: "INSUFFICIENT_CREDITS", secondsRemaining: balance.secondsRemaining });
      const reservation = await this.deps.store.createReservation(tx, {
        customerId,
        endpoint: input.endpoint,
        reservedSeconds: input.estimatedSeconds,
        idempotencyKey,
        actor: actorOf(caller),
        expiresAt: new Date(now.getTime() + this.limits.reservationTtlSeconds * 1000),
      });
      await this.deps.store.saveBalance(tx, customerId, after);
      await this.deps.store.appendLedger(tx, [
        ledgerEntry(customerId, "RESERVE", -input.estimatedSeconds, after, reservation.id, null, actorOf(caller)),
      ]);
      return succeed({ reservation, balance: after, replayed: false });
    });
  }

  async confirm(caller: Caller, reservationId: string, actualSeconds: number): Promise<Outcome<SettleResult>> {
    const invalid = checkSeconds("actualSeconds", actualSeconds, 0, this.limits.actualMaxSeconds);
    if (invalid) return fail(invalid);
    return this.settle(caller, reservationId, "Mutation.confirmReservation", async ({ tx, customerId, balance, now }, reservation) => {
      if (reservation.status === "CONFIRMED" && reservation.actualSeconds === actualSeconds) {
        return succeed({ reservation, balance });
      }
      if (reservation.status !== "ACTIVE") return fail({ code: "RESERVATION_SETTLED", status: reservation.status });
      const settlement = arithmetic.confirm(balance, reservation.reservedSeconds, actualSeconds);
      const settled = await this.settleActive(tx, reservation.id, {
        status: "CONFIRMED",
        actualSeconds,
        chargedSeconds: settlement.chargedSeconds,
        unbilledSeconds: settlement.unbilledSeconds,
        settledAt: now,
      });
      await this.deps.store.saveBalance(tx, customerId, settlement.balance);
      const note = settlement.unbilledSeconds > 0 ? `${settlement.unbilledSeconds} s unbilled: balance ran out` : null;
      await this.deps.store.appendLedger(tx, [
        ledgerEntry(customerId, "CONFIRM", settlement.deltaSeconds, settlement.balance, reservation.id, note, actorOf(caller)),
      ]);
      return succeed({ reservation: settled, balance: settlement.balance });
    });
  }

  async release(caller: Caller, reservationId: string, reason: string | null | undefined): Promise<Outcome<SettleResult>> {
    const invalid = checkText("reason", reason, this.limits.reasonMaxLength, false);
    if (invalid) return fail(invalid);
    return this.settle(caller, reservationId, "Mutation.releaseReservation", async ({ tx, customerId, balance, now }, reservation) => {
      if (reservation.status !== "ACTIVE") return fail({ code: "RESERVATION_SETTLED", status: reservation.status });
      const after = arithmetic.release(balance, reservation.reservedSeconds);
      const settled = await this.settleActive(tx, reservation.id, {
        status: "RELEASED",
        reason: reason ?? null,
        settledAt: now,
      });
      await this.deps.store.saveBalance(tx, customerId, after);
      await this.deps.store.appendLedger(tx, [
        ledgerEntry(customerId, "RELEASE", reservation.reservedSeconds, after, reservation.id, reason ?? null, actorOf(caller)),
      ]);
      return succeed({ reservation: settled, balance: after });
    });
  }

  async adjust(caller: Caller, customerId: string, deltaSeconds: number, note: string): Promise<Outcome<CustomerRecord>> {
    const denied = policy.check("Mutation.adjustCredits", caller);
    if (denied) return fail(denied);
    const invalid = firstFailure(checkAdjustment(deltaSeconds, this.limits), checkText("note", note, this.limits.noteMaxLength, true));
    if (invalid) return fail(invalid);
    if (!uuidPattern.test(customerId)) return fail(customerNotFound);
    return this.inCustomerTransaction(customerId, nothingToRead, async (state) => {
      const applied = await this.applyAdjustment(state, deltaSeconds, { kind: "ADJUSTMENT", actor: actorOf(caller), note });
      if (!applied.ok) return applied;
      const customer = await this.deps.customers.findById(state.tx, customerId);
      return customer ? succeed(customer) : fail(customerNotFound);
    });
  }

  /** Every customer has a balance row from its creation on, at zero. */
  async openBalanceInTransaction(tx: Transaction, customerId: string): Promise<void> {
    await this.deps.store.openBalance(tx, customerId);
  }

  /**
   * Grants seconds inside a caller's transaction (customer creation, payments). It touches no
   * reservation, so it needs neither the customer's lock nor expiry: its row lock is enough.
   */
  async grantInTransaction(tx: Transaction, customerId: string, seconds: number, details: GrantDetails): Promise<Outcome<Balance>> {
    const customer = await this.deps.store.lockBalance(tx, customerId);
    if (!customer) return fail(customerNotFound);
    const state = { tx, customerId, balance: customer.balance, now: this.deps.now(), unexpiredActiveCount: 0 };
    return this.applyAdjustment(state, seconds, details);
  }

  /**
   * Takes back up to `seconds` a refunded payment granted, as far as they are unspent (never
   * below zero), with a REFUND ledger entry. Runs in the caller's transaction.
   */
  async takeBackInTransaction(
    tx: Transaction,
    customerId: string,
    seconds: number,
    details: { actor: string; note: string },
  ): Promise<Outcome<{ takenSeconds: number; balance: Balance }>> {
    const customer = await this.deps.store.lockBalance(tx, customerId);
    if (!customer) return fail(customerNotFound);
    const { balance, takenSeconds } = arithmetic.takeBack(customer.balance, seconds);
    if (takenSeconds > 0) {
      await this.deps.store.saveBalance(tx, customerId, balance);
      await this.deps.store.appendLedger(tx, [ledgerEntry(customerId, "REFUND", -takenSeconds, balance, null, details.note, details.actor)]);
    }
    return succeed({ takenSeconds, balance });
  }

  /** Stored reservations by status, for metrics. */
  reservationCounts(): Promise<{ status: string; count: number }[]> {
    return this.deps.store.countByStatus(this.deps.database);
  }

  async balanceOf(customerId: string): Promise<Balance> {
    const balance = await this.deps.store.effectiveBalance(this.deps.database, customerId, this.deps.now());
    return balance ?? { secondsRemaining: 0, secondsReserved: 0 };
  }

  /** A reservation for its owner or staff; anyone else learns nothing about it. */
  async findReservation(caller: Caller, reservationId: string): Promise<Outcome<ReservationRecord | null>> {
    const denied = policy.check("Query.reservation", caller);
    if (denied) return fail(denied);
    const reservation = uuidPattern.test(reservationId) ? await this.deps.store.findReservation(this.deps.database, reservationId) : undefined;
    if (!reservation) return succeed(null);
    const notOwner = policy.checkOwner("Query.reservation", caller, reservation.customerId);
    if (notOwner === "hidden") return succeed(null);
    if (notOwner) return fail(notOwner);
    return succeed(presentReservation(reservation, this.deps.now()));
  }

  async reservationsOf(
    customerId: string,
    status: ReservationStatus | null | undefined,
    first: number,
    after: string | null | undefined,
  ): Promise<Outcome<Page<ReservationRecord>>> {
    const page = this.deps.pager.request("reservation", `${customerId}:${status ?? "ALL"}`, first, after);
    if (!page.ok) return page;
    const now = this.deps.now();
    const rows = await this.deps.store.listReservations(this.deps.database, customerId, status ?? undefined, page.value, now);
    return succeed(this.deps.pager.page("reservation", `${customerId}:${status ?? "ALL"}`, rows.map((row) => presentReservation(row, now)), page.value, (row) => row.seq));
  }

  async ledgerOf(customerId: string, first: number, after: string | null | undefined): Promise<Outcome<Page<LedgerEntryRecord>>> {
    const page = this.deps.pager.request("ledger", customerId, first, after);
    if (!page.ok) return page;
    const rows = await this.deps.store.listLedger(this.deps.database, customerId, page.value);
    return succeed(this.deps.pager.page("ledger", customerId, rows, page.value, (row) => row.id));
  }

  /**
   * Settles, as EXPIRED, ACTIVE reservations past their expiry, one customer per transaction.
   * Safe with several instances sweeping at once: each customer's row lock and Serializable
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

  private async applyAdjustment(state: CustomerTransaction, deltaSeconds: number, details: GrantDetails): Promise<Outcome<Balance>> {
    const adjusted = arithmetic.adjust(state.balance, deltaSeconds, this.limits.balanceMaxSeconds);
    if (!adjusted.ok) {
      return adjusted.reason === "insufficient"
        ? fail({ code: "INSUFFICIENT_CREDITS", secondsRemaining: state.balance.secondsRemaining })
        : fail({ code: "BAD_USER_INPUT", field: "deltaSeconds", message: `balance may not exceed ${this.limits.balanceMaxSeconds} seconds` });
    }
    await this.deps.store.saveBalance(state.tx, state.customerId, adjusted.balance);
    await this.deps.store.appendLedger(state.tx, [
      ledgerEntry(state.customerId, details.kind, deltaSeconds, adjusted.balance, null, details.note, details.actor),
    ]);
    return succeed(adjusted.balance);
  }

  private reservingCustomer(caller: Caller, requestedCustomerId: string | null | undefined): Outcome<string> {
    const denied = policy.check("Mutation.reserveCredits", caller);
    if (denied) return fail(denied);
    const customerId = requestedCustomerId ?? ownCustomerId(caller);
    if (!customerId) return fail({ code: "BAD_USER_INPUT", field: "customerId", message: "staff must name customerId" });
    const notOwner = policy.checkOwner("Mutation.reserveCredits", caller, customerId);
    if (notOwner) return fail(notOwner === "hidden" ? customerNotFound : notOwner);
    if (!uuidPattern.test(customerId)) return fail(customerNotFound);
    return succeed(customerId);
  }

  private replayReservation(earlier: ReservationRecord, input: ReserveInput, balance: Balance, now: Date): Outcome<ReserveResult> {
    if (earlier.endpoint !== input.endpoint || earlier.reservedSeconds !== input.estimatedSeconds) {
      return fail({
        code: "BAD_USER_INPUT",
        field: "idempotencyKey",
        message: "idempotencyKey was already used for a reservation with another endpoint or estimatedSeconds",
      });
    }
    return succeed({ reservation: presentReservation(earlier, now), balance, replayed: true });
  }

  private async settle(
    caller: Caller,
    reservationId: string,
    operation: "Mutation.confirmReservation" | "Mutation.releaseReservation",
    work: (state: CustomerTransaction, reservation: ReservationRecord) => Promise<Outcome<SettleResult>>,
  ): Promise<Outcome<SettleResult>> {
    const denied = policy.check(operation, caller);
    if (denied) return fail(denied);
    const visible = uuidPattern.test(reservationId) ? await this.deps.store.findReservation(this.deps.database, reservationId) : undefined;
    if (!visible) return fail(reservationNotFound);
    const notOwner = policy.checkOwner(operation, caller, visible.customerId);
    if (notOwner) return fail(notOwner === "hidden" ? reservationNotFound : notOwner);
    // Read again under the lock: it may have been settled meanwhile. Expired ones are
    // presented as EXPIRED here, and settled as such by the transaction.
    const readCurrent = () => this.deps.store.findReservation(this.deps.database, reservationId);
    return this.inCustomerTransaction(visible.customerId, readCurrent, async (state, reservation) => {
      if (!reservation) return fail(reservationNotFound);
      return work(state, presentReservation(reservation, state.now));
    });
  }

  /**
   * One customer's balance transaction: under the customer's lock, `read` and the customer's
   * ACTIVE reservations are read first, what has expired is settled, then `work` runs in a
   * Serializable transaction that starts by locking the customer's row.
   */
  private inCustomerTransaction<T, R>(
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
        return work({ tx, customerId, balance: customer.balance, now, unexpiredActiveCount: active.unexpiredCount }, readValue);
      });
    });
  }

  /** Settles the customer's expired reservations in one transaction; call under the customer's lock. */
  private async settleExpired(customerId: string, expired: ReservationRecord[], now: Date): Promise<Outcome<number>> {
    if (expired.length === 0) return succeed(0);
    return this.deps.transactor.serializable(async (tx) => {
      const customer = await this.deps.store.lockBalance(tx, customerId);
      if (!customer) return fail(customerNotFound);
      await this.expire(tx, customerId, customer.balance, expired, now);
      return succeed(expired.length);
    });
  }

  private async expire(tx: Transaction, customerId: string, start: Balance, expired: ReservationRecord[], now: Date): Promise<void> {
    let balance = start;
    const entries: NewLedgerEntry[] = [];
    for (const reservation of expired) {
      balance = arithmetic.release(balance, reservation.reservedSeconds);
      await this.settleActive(tx, reservation.id, { status: "EXPIRED", reason: expiryReason, settledAt: now });
      entries.push(ledgerEntry(customerId, "EXPIRE", reservation.reservedSeconds, balance, reservation.id, null, "system"));
    }
    await this.deps.store.saveBalance(tx, customerId, balance);
    await this.deps.store.appendLedger(tx, entries);
  }

  /** Reservations change only under their customer's lock; finding one already settled is a bug. */
  private async settleActive(tx: Transaction, reservationId: string, settlement: ReservationSettlement): Promise<ReservationRecord> {
    const settled = await this.deps.store.settleReservation(tx, reservationId, settlement);
    assert(settled !== undefined, `reservation ${reservationId} was settled outside its customer's lock`);
    return settled;
  }
}

const nothingToRead = async (): Promise<undefined> => undefined;

function ledgerEntry(
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
