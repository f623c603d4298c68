// Seconds added or taken outside reservations: a customer's balance opened, grants (payments,
// a customer's starting seconds, staff), staff deductions, refunds taken back from their grant.
import { actorOf, type Caller } from "../../platform/auth";
import { Policy } from "../../platform/authorization";
import type { Transaction } from "../../platform/database";
import { badInput, fail, succeed, type Outcome } from "../../platform/failures";
import { checkText, firstFailure, uuidPattern } from "../../platform/validation";
import type { CustomerRecord } from "../customers";
import * as arithmetic from "./balance";
import type { Balance } from "./balance";
import {
  customerNotFound,
  ledgerMoves,
  nothingToRead,
  type BalanceTransactions,
  type CreditsDependencies,
  type CustomerTransaction,
} from "./balance-transactions";
import { creditsPermissions } from "./credits.permissions";
import { checkAdjustment } from "./credits.validation";
import * as book from "./grant-book";
import type { GrantSource } from "./grant-book";
import type { LedgerEntryKind } from "./ledger";

export interface GrantDetails {
  kind: Extract<LedgerEntryKind, "GRANT" | "ADJUSTMENT">;
  source: GrantSource;
  /** After this instant whatever remains expires; null: never. */
  expiresAt: Date | null;
  /** What granted it, unique across grants (a Stripe effect key); null for none. */
  origin: string | null;
  actor: string;
  note: string | null;
}

export interface AdjustInput {
  customerId: string;
  deltaSeconds: number;
  note: string;
  expiresAt?: Date | null;
}

const policy = new Policy(creditsPermissions);

export class GrantsService {
  constructor(
    private readonly deps: CreditsDependencies,
    private readonly balances: BalanceTransactions,
  ) {}

  private get limits() {
    return { ...this.deps.config.limits, ...this.deps.config.credits };
  }

  /** Staff: a positive delta is a STAFF grant (expiring at expiresAt, or never); a negative one is taken soonest-expiring first. */
  async adjust(caller: Caller, input: AdjustInput): Promise<Outcome<CustomerRecord>> {
    const denied = policy.check("Mutation.adjustCredits", caller);
    if (denied) return fail(denied);
    const { customerId, deltaSeconds, note } = input;
    const expiresAt = input.expiresAt ?? null;
    const invalid = firstFailure(checkAdjustment(deltaSeconds, this.limits), checkText("note", note, this.limits.noteMaxLength, true));
    if (invalid) return fail(invalid);
    if (expiresAt !== null && deltaSeconds < 0) return badInput("expiresAt", "expiresAt applies to a positive deltaSeconds only");
    if (book.isExpiredAt({ expiresAt }, this.deps.now())) return badInput("expiresAt", "expiresAt must be in the future");
    if (!uuidPattern.test(customerId)) return fail(customerNotFound);
    return this.balances.run(customerId, nothingToRead, async (state) => {
      const details = { actor: actorOf(caller), note };
      const applied =
        deltaSeconds > 0
          ? await this.addGrant(state, deltaSeconds, { ...details, kind: "ADJUSTMENT", source: "STAFF", expiresAt, origin: null })
          : await this.deduct(state, -deltaSeconds, details);
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
   * reservation, so it needs neither the customer's lock nor their expiry: its row lock is enough.
   */
  async grantInTransaction(tx: Transaction, customerId: string, seconds: number, details: GrantDetails): Promise<Outcome<Balance>> {
    const state = await this.balances.open(tx, customerId, this.deps.now());
    if (!state) return fail(customerNotFound);
    return this.addGrant(state, seconds, details);
  }

  /**
   * Takes back up to `seconds` from the grants the refunded payment made (by their origins),
   * what they have remaining now and, as running jobs give them back, what those hold (never
   * below zero), with REFUND ledger entries. Runs in the caller's transaction.
   */
  async takeBackInTransaction(
    tx: Transaction,
    customerId: string,
    seconds: number,
    details: { origins: readonly string[]; actor: string; note: string },
  ): Promise<Outcome<{ takenSeconds: number; balance: Balance }>> {
    const state = await this.balances.open(tx, customerId, this.deps.now());
    if (!state) return fail(customerNotFound);
    const origins = new Set(details.origins);
    const own = new Set(state.grants.filter((grant) => grant.origin !== null && origins.has(grant.origin)).map((grant) => grant.id));
    const taken = book.takeBackFrom(state.grants, own, seconds, state.now);
    const balance = await this.balances.commit(state, taken.grants, ledgerMoves(taken.moves, { reservationId: null, note: details.note, actor: details.actor }));
    return succeed({ takenSeconds: taken.takenSeconds, balance });
  }

  private async addGrant(state: CustomerTransaction, seconds: number, details: GrantDetails): Promise<Outcome<Balance>> {
    // A grant already expired when it arrives (a payment's event delivered late) adds nothing.
    const expiredOnArrival = book.isExpiredAt(details, state.now);
    if (!expiredOnArrival && !arithmetic.fitsBalanceMax(state.balance, seconds, this.limits.balanceMaxSeconds)) {
      return badInput("deltaSeconds", `balance may not exceed ${this.limits.balanceMaxSeconds} seconds`);
    }
    if (!expiredOnArrival && state.grants.filter((grant) => !book.isRetired(grant)).length >= this.limits.grantsLiveMax) {
      return badInput("deltaSeconds", `a customer may have at most ${this.limits.grantsLiveMax} grants with seconds left`);
    }
    const grant = await this.deps.grantsStore.insertGrant(state.tx, {
      customerId: state.customerId,
      source: details.source,
      seconds,
      expiresAt: details.expiresAt,
      origin: details.origin,
      note: details.note,
      actor: details.actor,
    });
    const ledger = { reservationId: null, note: details.note, actor: details.actor };
    const moves = ledgerMoves([{ grantId: grant.id, kind: details.kind, deltaSeconds: seconds }], ledger);
    // A grant whose expiry has already passed (a payment's event delivered late) expires at once.
    const expired = book.expireDue([...state.grants, grant], state.now);
    moves.push(...ledgerMoves(expired.moves, { ...ledger, actor: "system", note: null }));
    return succeed(await this.balances.commit(state, expired.grants, moves, { inserted: [grant] }));
  }

  private async deduct(state: CustomerTransaction, seconds: number, details: { actor: string; note: string }): Promise<Outcome<Balance>> {
    const deducted = book.deduct(state.grants, seconds, state.now);
    if (!deducted) return fail({ code: "INSUFFICIENT_CREDITS", secondsRemaining: state.balance.secondsRemaining });
    return succeed(await this.balances.commit(state, deducted.grants, ledgerMoves(deducted.moves, { reservationId: null, ...details })));
  }
}
