// The rules of credits: reserve, confirm, release, adjust, expire. Every change of a balance
// runs in one Serializable transaction (retried on conflict) that locks the customer, settles
// its expired reservations first, decides with the pure arithmetic in balance.ts, and writes
// the balance, the reservation and the ledger entry together.
import type { Config } from "../../config";
import { actorOf, type Caller } from "../../platform/auth";
import { ownCustomerId, requireOwnerOrStaff, requireSignedIn, requireStaff } from "../../platform/authorization";
import type { Database, Transaction, Transactor } from "../../platform/database";
import { fail, succeed, type Failure, type Outcome } from "../../platform/failures";
import type { CustomerSerializer } from "../../platform/customer-serializer";
import { pageRequest, toPage, type Page } from "../../platform/pagination";
import type { CustomerRecord } from "../customers/customer";
import * as arithmetic from "./balance";
import type { Balance } from "./balance";
import type { CreditsStore } from "./credits.store";
import {
  checkAdjustment,
  checkEndpoint,
  checkIdempotencyKey,
  checkSecondsAtMost,
  checkText,
  firstFailure,
  uuidPattern,
} from "./credits.validation";
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

/** Reads a customer for payloads that return one; the customers module owns that table. */
export interface CustomerReader {
  findById(db: Transaction | Database, customerId: string): Promise<CustomerRecord | undefined>;
}

export interface CreditsDependencies {
  database: Database;
  transactor: Transactor;
  store: CreditsStore;
  customers: CustomerReader;
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
}

const activeLimitRetryAfterSeconds = 5;
const customerNotFound: Failure = { code: "CUSTOMER_NOT_FOUND" };
const reservationNotFound: Failure = { code: "RESERVATION_NOT_FOUND" };

export class CreditsService {
  constructor(private readonly deps: CreditsDependencies) {}

  private get limits() {
    return { ...this.deps.config.limits, ...this.deps.config.credits };
  }

  async reserve(caller: Caller, input: ReserveInput): Promise<Outcome<ReserveResult>> {
    const target = this.reservingCustomer(caller, input.customerId);
    if (!target.ok) return target;
    const invalid = firstFailure(
      input.estimatedSeconds < 1 ? { code: "BAD_USER_INPUT", field: "estimatedSeconds", message: "must be positive" } : undefined,
      checkSecondsAtMost("estimatedSeconds", input.estimatedSeconds, this.limits.reservationMaxSeconds),
      checkEndpoint(input.endpoint, this.limits),
      checkIdempotencyKey(input.idempotencyKey, this.limits),
    );
    if (invalid) return fail(invalid);
    const idempotencyKey = input.idempotencyKey ?? null;
    return this.inCustomerTransaction(target.value, async ({ tx, customerId, balance, now }) => {
      if (idempotencyKey !== null) {
        const earlier = await this.deps.store.findReservationByIdempotencyKey(tx, customerId, idempotencyKey);
        if (earlier) return this.replayReservation(earlier, input, balance, now);
      }
      const activeCount = await this.deps.store.countUnexpiredActive(tx, customerId, now);
      if (activeCount >= this.limits.activeReservationsPerCustomerMax) {
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
    const invalid = checkSecondsAtMost("actualSeconds", actualSeconds, this.limits.actualMaxSeconds);
    if (invalid) return fail(invalid);
    return this.settle(caller, reservationId, async ({ tx, customerId, balance, now }, reservation) => {
      if (reservation.status === "CONFIRMED" && reservation.actualSeconds === actualSeconds) {
        return succeed({ reservation, balance });
      }
      if (reservation.status !== "ACTIVE") return fail({ code: "RESERVATION_SETTLED", status: reservation.status });
      const settlement = arithmetic.confirm(balance, reservation.reservedSeconds, actualSeconds);
      const settled = await this.deps.store.settleReservation(tx, reservation.id, {
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
    return this.settle(caller, reservationId, async ({ tx, customerId, balance, now }, reservation) => {
      if (reservation.status !== "ACTIVE") return fail({ code: "RESERVATION_SETTLED", status: reservation.status });
      const after = arithmetic.release(balance, reservation.reservedSeconds);
      const settled = await this.deps.store.settleReservation(tx, reservation.id, {
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
    const denied = requireStaff(caller);
    if (denied) return fail(denied);
    const invalid = firstFailure(checkAdjustment(deltaSeconds, this.limits), checkText("note", note, this.limits.noteMaxLength, true));
    if (invalid) return fail(invalid);
    if (!uuidPattern.test(customerId)) return fail(customerNotFound);
    return this.inCustomerTransaction(customerId, async (state) => {
      const applied = await this.applyAdjustment(state, deltaSeconds, { kind: "ADJUSTMENT", actor: actorOf(caller), note });
      if (!applied.ok) return applied;
      const customer = await this.deps.customers.findById(state.tx, customerId);
      return customer ? succeed(customer) : fail(customerNotFound);
    });
  }

  /** Grants seconds inside a caller's transaction (customer creation, payments). */
  async grantInTransaction(tx: Transaction, customerId: string, seconds: number, details: GrantDetails): Promise<Outcome<Balance>> {
    const locked = await this.lockAndExpire(tx, customerId);
    if (!locked.ok) return locked;
    return this.applyAdjustment(locked.value, seconds, details);
  }

  async balanceOf(customerId: string): Promise<Balance> {
    const balance = await this.deps.store.effectiveBalance(this.deps.database, customerId, this.deps.now());
    return balance ?? { secondsRemaining: 0, secondsReserved: 0 };
  }

  /** A reservation for its owner or staff; anyone else learns nothing about it. */
  async findReservation(caller: Caller, reservationId: string): Promise<Outcome<ReservationRecord | null>> {
    const denied = requireSignedIn(caller);
    if (denied) return fail(denied);
    const reservation = await this.visibleReservation(caller, reservationId);
    return succeed(reservation ? presentReservation(reservation, this.deps.now()) : null);
  }

  async reservationsOf(
    customerId: string,
    status: ReservationStatus | null | undefined,
    first: number,
    after: string | null | undefined,
  ): Promise<Outcome<Page<ReservationRecord>>> {
    const page = pageRequest("reservation", first, after, this.limits.pageSizeMax);
    if (!page.ok) return page;
    const now = this.deps.now();
    const rows = await this.deps.store.listReservations(this.deps.database, customerId, status ?? undefined, page.value, now);
    return succeed(toPage("reservation", rows.map((row) => presentReservation(row, now)), first, (row) => row.seq));
  }

  async ledgerOf(customerId: string, first: number, after: string | null | undefined): Promise<Outcome<Page<LedgerEntryRecord>>> {
    const page = pageRequest("ledger", first, after, this.limits.pageSizeMax);
    if (!page.ok) return page;
    const rows = await this.deps.store.listLedger(this.deps.database, customerId, page.value);
    return succeed(toPage("ledger", rows, first, (row) => row.id));
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
      const outcome = await this.inCustomerTransaction(customerId, async () => succeed(undefined));
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
    const denied = requireSignedIn(caller);
    if (denied) return fail(denied);
    const own = ownCustomerId(caller);
    if (own !== undefined) {
      if (requestedCustomerId && requestedCustomerId !== own) return fail({ code: "FORBIDDEN", message: "Not your account" });
      return succeed(own);
    }
    if (!requestedCustomerId) return fail({ code: "BAD_USER_INPUT", field: "customerId", message: "staff must name customerId" });
    if (!uuidPattern.test(requestedCustomerId)) return fail(customerNotFound);
    return succeed(requestedCustomerId);
  }

  private async visibleReservation(caller: Caller, reservationId: string): Promise<ReservationRecord | undefined> {
    if (!uuidPattern.test(reservationId)) return undefined;
    const reservation = await this.deps.store.findReservation(this.deps.database, reservationId);
    if (!reservation || requireOwnerOrStaff(caller, reservation.customerId)) return undefined;
    return reservation;
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
    work: (state: CustomerTransaction, reservation: ReservationRecord) => Promise<Outcome<SettleResult>>,
  ): Promise<Outcome<SettleResult>> {
    const denied = requireSignedIn(caller);
    if (denied) return fail(denied);
    const visible = await this.visibleReservation(caller, reservationId);
    if (!visible) return fail(reservationNotFound);
    return this.inCustomerTransaction(visible.customerId, async (state) => {
      // Read again inside the transaction: it may have been settled or expired meanwhile.
      const reservation = await this.deps.store.findReservation(state.tx, reservationId);
      if (!reservation) return fail(reservationNotFound);
      return work(state, reservation);
    });
  }

  /** One customer's balance transaction: queued per customer across instances, Serializable in the database. */
  private inCustomerTransaction<T>(
    customerId: string,
    work: (state: CustomerTransaction) => Promise<Outcome<T>>,
  ): Promise<Outcome<T>> {
    return this.deps.customerSerializer.run(customerId, () =>
      this.deps.transactor.serializable(async (tx) => {
        const locked = await this.lockAndExpire(tx, customerId);
        return locked.ok ? work(locked.value) : locked;
      }),
    );
  }

  private async lockAndExpire(tx: Transaction, customerId: string): Promise<Outcome<CustomerTransaction>> {
    const customer = await this.deps.store.lockCustomer(tx, customerId);
    if (!customer) return fail(customerNotFound);
    const now = this.deps.now();
    let balance = customer.balance;
    const expired = await this.deps.store.listExpiredActive(tx, customerId, now);
    const entries: NewLedgerEntry[] = [];
    for (const reservation of expired) {
      balance = arithmetic.release(balance, reservation.reservedSeconds);
      await this.deps.store.settleReservation(tx, reservation.id, { status: "EXPIRED", reason: expiryReason, settledAt: now });
      entries.push(ledgerEntry(customerId, "EXPIRE", reservation.reservedSeconds, balance, reservation.id, null, "system"));
    }
    if (entries.length > 0) {
      await this.deps.store.saveBalance(tx, customerId, balance);
      await this.deps.store.appendLedger(tx, entries);
    }
    return succeed({ tx, customerId, balance, now });
  }
}

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
