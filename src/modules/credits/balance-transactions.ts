// The one way a customer's balance changes: after this instance's earlier work on the customer
// (CustomerSerializer), one Serializable transaction that locks the customer's balance row and
// reads its grants, with its expired reservations settled first and its grants' due expiries
// settled at the start. Every use case of the credits module (reservations, grants) goes
// through it, and ends in `commit`, which writes the grants that changed, the balance (their
// sum, and its version plus one) and one ledger entry per grant moved.
//
// The customer's reservations (and what the operation looks up) are read before its
// transaction, in one statement with the balance's version: reading them inside a
// Serializable transaction would take predicate locks on index pages shared with other
// customers, so that PostgreSQL aborts unrelated customers' transactions. Every transaction
// that changes a reservation commits a new version, so the transaction checks, on locking the
// balance row, that the version is still the one read; if not, the reads went stale and
// everything runs again (CustomerSerializer: under the customer's advisory lock).
import type { Config } from "../../config";
import { assert } from "../../platform/assert";
import type { CustomerSerializer } from "../../platform/customer-serializer";
import { StaleReadError, type Database, type Transaction, type Transactor } from "../../platform/database";
import { fail, succeed, type Failure, type Outcome } from "../../platform/failures";
import type { Mailer } from "../../platform/mailer";
import type { OutboxStore } from "../../platform/outbox/outbox.store";
import type { Pager } from "../../platform/pagination";
import type { RateLimiter } from "../../platform/rate-limiter";
import type { CustomerDirectory } from "../customers";
import * as arithmetic from "./balance";
import type { Balance, LowBalanceAlert } from "./balance";
import type { CreditsStore, ReadBeforeTransaction, ReservationSettlement } from "./credits.store";
import * as book from "./grant-book";
import type { Grant, GrantMove, Hold } from "./grant-book";
import type { GrantRecord, GrantsStore } from "./grants.store";
import type { NewLedgerEntry } from "./ledger";
import { expiryReason, isPastExpiry, type ReservationRecord } from "./reservation";

export interface CreditsDependencies {
  database: Database;
  pager: Pager;
  transactor: Transactor;
  store: CreditsStore;
  grantsStore: GrantsStore;
  customers: CustomerDirectory;
  customerSerializer: CustomerSerializer;
  /** Low-balance and expiry emails go through the outbox, written in the balance's transaction. */
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
  /** The customer's live grants, due expiries already settled (in `opening`, not yet written). */
  grants: GrantRecord[];
  /** What the grants make: the balance this transaction starts from. */
  balance: Balance;
  now: Date;
  /** ACTIVE reservations not yet past expiry, before this transaction's own work. */
  unexpiredActiveCount: number;
  /** The row as locked and the expiry moves made on opening; `commit` writes them. */
  opening: { stored: Balance; alert: LowBalanceAlert; version: bigint; loaded: GrantRecord[]; expiryMoves: GrantMove[] };
}

/** What the reads before a transaction found, which its transaction checks is still current. */
export interface ReadExpectation {
  version: bigint;
  unexpiredActiveCount: number;
}

/** What a transaction changed besides its grants' counters and ledger moves. */
export interface CommitChanges {
  /** A new low-balance alert (a threshold set), instead of the one read under the lock. */
  alert?: LowBalanceAlert;
  /** Grants this transaction inserted. */
  inserted?: readonly Grant[];
}

/** A grant move with what the ledger records of it. */
export interface LedgerMove extends GrantMove {
  reservationId: string | null;
  note: string | null;
  actor: string;
}

export const lowBalanceEmailJobKind = "low_balance_email";

export const customerNotFound: Failure = { code: "CUSTOMER_NOT_FOUND" };
export const reservationNotFound: Failure = { code: "RESERVATION_NOT_FOUND" };

/** For `run`: the operation looks nothing up besides the customer's reservations. */
export const nothingToRead = null;

/** Annotates a book's moves for the ledger. */
export function ledgerMoves(moves: readonly GrantMove[], details: { reservationId: string | null; note: string | null; actor: string }): LedgerMove[] {
  return moves.map((move) => ({ ...move, ...details }));
}

export class BalanceTransactions {
  constructor(private readonly deps: CreditsDependencies) {}

  /**
   * One customer's balance transaction: `read` (or, with `nothingToRead`, the customer's
   * reservations alone) before it, what has expired settled, then `work` in a Serializable
   * transaction that starts by locking the customer's balance row, on the reads' version.
   */
  run<T, R>(
    customerId: string,
    read: (() => Promise<ReadBeforeTransaction<R> | undefined>) | typeof nothingToRead,
    work: (state: CustomerTransaction, found: R | null) => Promise<Outcome<T>>,
  ): Promise<Outcome<T>> {
    const readBefore = read ?? (() => this.deps.store.readActive(this.deps.database, customerId));
    return this.deps.customerSerializer.run(customerId, async () => {
      const now = this.deps.now();
      const before = await readBefore();
      if (!before) return fail(customerNotFound);
      const expired = before.active.filter((reservation) => isPastExpiry(reservation, now));
      let version = before.version;
      // Expired reservations are settled in a transaction of their own: that housekeeping is
      // kept even when the operation then fails and its transaction is rolled back.
      if (expired.length > 0) {
        const settled = await this.settleExpired(customerId, expired, now, version);
        if (!settled.ok) return settled;
        version = settled.value;
      }
      const expectation = { version, unexpiredActiveCount: before.active.length - expired.length };
      return this.deps.transactor.once(async (tx) => {
        const state = await this.open(tx, customerId, now, expectation);
        if (!state) return fail(customerNotFound);
        return work(state, before.found);
      });
    });
  }

  /**
   * Locks the customer's balance row and reads its grants, settling the expiry of those whose
   * instant has come. With `expected`, what was read before the transaction must still be
   * current (StaleReadError, retried, if not). Payments read nothing before, and pass none.
   */
  async open(tx: Transaction, customerId: string, now: Date, expected?: ReadExpectation): Promise<CustomerTransaction | undefined> {
    const locked = await this.deps.store.lockBalance(tx, customerId);
    if (!locked) return undefined;
    if (expected && locked.version !== expected.version) {
      throw new StaleReadError(`customer ${customerId}: read at balance version ${expected.version}, now ${locked.version}`);
    }
    const expired = book.expireDue(locked.grants, now);
    const grants = expired.grants;
    return {
      tx,
      customerId,
      grants,
      balance: book.balanceOf(grants),
      now,
      unexpiredActiveCount: expected?.unexpiredActiveCount ?? 0,
      opening: { stored: locked.balance, alert: locked.alert, version: locked.version, loaded: locked.grants, expiryMoves: expired.moves },
    };
  }

  /**
   * Settles, as EXPIRED, ACTIVE reservations past their expiry, and the expiry of grants whose
   * instant has come, one customer per transaction. Safe with several instances sweeping at
   * once: each customer's balance row lock, its version and Serializable isolation let exactly
   * one settle a given reservation or grant; the others find nothing left.
   */
  async sweepExpired(): Promise<number> {
    const { batchSize } = this.deps.config.sweeper;
    const now = this.deps.now();
    const withReservations = await this.deps.store.customersWithExpiredReservations(this.deps.database, now, batchSize);
    const withGrants = await this.deps.grantsStore.customersWithDueGrants(this.deps.database, now, batchSize);
    let swept = 0;
    const failures: string[] = [];
    for (const customerId of new Set([...withReservations, ...withGrants])) {
      // One customer's failure (a database error, a bug) must not stop the others' expiry.
      try {
        const outcome = await this.deps.customerSerializer.run(customerId, async () => {
          const current = this.deps.now();
          const before = await this.deps.store.readActive(this.deps.database, customerId);
          if (!before) return fail(customerNotFound);
          const expired = before.active.filter((reservation) => isPastExpiry(reservation, current));
          return this.settleExpired(customerId, expired, current, before.version);
        });
        if (outcome.ok) swept += 1;
      } catch (error) {
        failures.push(`${customerId}: ${(error as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(`expiry of ${failures.length} customers failed (${swept} settled): ${failures.join("; ")}`);
    return swept;
  }

  /**
   * Settles the customer's expired reservations (and due grant expiries) in one transaction,
   * not retried here (the customer serializer retries from the reads). Returns the balance
   * version it committed.
   */
  private async settleExpired(customerId: string, expired: ReservationRecord[], now: Date, version: bigint): Promise<Outcome<bigint>> {
    const holds = await this.deps.grantsStore.holdsOf(this.deps.database, expired.map((reservation) => reservation.id));
    return this.deps.transactor.once(async (tx) => {
      const state = await this.open(tx, customerId, now, { version, unexpiredActiveCount: 0 });
      if (!state) return fail(customerNotFound);
      // Another instance settled it all first: writing nothing keeps the version, so that the
      // customer's requests in flight need not start again.
      if (expired.length === 0 && state.opening.expiryMoves.length === 0) return succeed(version);
      let grants: readonly Grant[] = state.grants;
      const moves: LedgerMove[] = [];
      for (const reservation of expired) {
        const released = book.release(grants, this.holdsOfReservation(reservation, holds.get(reservation.id) ?? []), "EXPIRE", now);
        grants = released.grants;
        moves.push(...ledgerMoves(released.moves, { reservationId: reservation.id, note: null, actor: "system" }));
        await this.settleActive(tx, reservation, { status: "EXPIRED", reason: expiryReason, settledAt: now });
      }
      await this.commit(state, grants, moves);
      return succeed(state.opening.version + 1n);
    });
  }

  /** A reservation's holds, checked against what it reserved. */
  holdsOfReservation(reservation: ReservationRecord, holds: Hold[]): Hold[] {
    const heldSeconds = holds.reduce((sum, hold) => sum + hold.seconds, 0);
    assert(heldSeconds === reservation.reservedSeconds, `reservation ${reservation.id} holds ${heldSeconds} s of ${reservation.reservedSeconds}`);
    return holds;
  }

  /**
   * Ends a balance transaction: writes the grants that changed since the row was locked (the
   * opening expiries included), the balance they make with the alert state, and the ledger:
   * the opening expiries, then `moves`, each with the running balance after it. Queues the
   * low-balance email when the balance has just fallen below the threshold.
   */
  async commit(state: CustomerTransaction, grants: readonly Grant[], moves: readonly LedgerMove[], changes: CommitChanges = {}): Promise<Balance> {
    const { tx, customerId, now, opening } = state;
    const balance = book.balanceOf(grants);
    const next = arithmetic.nextLowBalanceAlert(changes.alert ?? opening.alert, balance.secondsRemaining);
    const entries: NewLedgerEntry[] = [];
    let runningSeconds = opening.stored.secondsRemaining;
    const expiryMoves = ledgerMoves(opening.expiryMoves, { reservationId: null, note: null, actor: "system" });
    for (const move of [...expiryMoves, ...moves]) {
      runningSeconds += move.deltaSeconds;
      entries.push({ customerId, kind: move.kind, deltaSeconds: move.deltaSeconds, balanceAfter: runningSeconds, reservationId: move.reservationId, grantId: move.grantId, note: move.note, actor: move.actor });
    }
    assert(runningSeconds === balance.secondsRemaining, `customer ${customerId}: the ledger runs to ${runningSeconds}, the grants to ${balance.secondsRemaining}`);
    // A grant inserted in this transaction is written already, as granted: only a change since counts.
    const written = [...opening.loaded, ...(changes.inserted ?? [])];
    const version = await this.deps.store.commitBalance(tx, { customerId, balance, alert: next.alert, grants: book.changedGrants(written, grants), entries, now });
    assert(version === opening.version + 1n, `customer ${customerId}: committed balance version ${version} on ${opening.version}`);
    if (next.fire) {
      await this.deps.outbox.enqueue(tx, {
        kind: lowBalanceEmailJobKind,
        customerId,
        payload: { customerId, secondsRemaining: balance.secondsRemaining, thresholdSeconds: next.alert.thresholdSeconds, nextExpiry: expiryPayload(book.nextExpiry(grants, now)) },
      });
    }
    return balance;
  }

  /**
   * Settles a reservation where it was read. Its settlement commits a new balance version, so
   * on this version it is still there; only a table rewrite (VACUUM FULL) moves a row without
   * one, and the reads are then stale.
   */
  async settleActive(tx: Transaction, reservation: ReservationRecord, settlement: ReservationSettlement): Promise<ReservationRecord> {
    const settled = await this.deps.store.settleReservation(tx, reservation, settlement);
    if (!settled) throw new StaleReadError(`reservation ${reservation.id} is no longer at ${reservation.rowAddress}`);
    return settled;
  }
}

function expiryPayload(expiry: book.CreditExpiry | null): { seconds: number; at: string } | null {
  return expiry === null ? null : { seconds: expiry.seconds, at: expiry.at.toISOString() };
}
