// Seconds added or taken outside reservations: a customer's balance opened, grants (payments,
// a customer's starting seconds), staff adjustments, refunds taken back.
import { actorOf, type Caller } from "../../platform/auth";
import { Policy } from "../../platform/authorization";
import type { Transaction } from "../../platform/database";
import { fail, succeed, type Outcome } from "../../platform/failures";
import { checkText, firstFailure, uuidPattern } from "../../platform/validation";
import type { CustomerRecord } from "../customers";
import * as arithmetic from "./balance";
import type { Balance } from "./balance";
import {
  customerNotFound,
  ledgerEntry,
  nothingToRead,
  type BalanceTransactions,
  type CreditsDependencies,
  type CustomerTransaction,
} from "./balance-transactions";
import { creditsPermissions } from "./credits.permissions";
import { checkAdjustment } from "./credits.validation";
import type { LedgerEntryKind } from "./ledger";

export interface GrantDetails {
  kind: Extract<LedgerEntryKind, "GRANT" | "ADJUSTMENT">;
  actor: string;
  note: string | null;
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

  async adjust(caller: Caller, customerId: string, deltaSeconds: number, note: string): Promise<Outcome<CustomerRecord>> {
    const denied = policy.check("Mutation.adjustCredits", caller);
    if (denied) return fail(denied);
    const invalid = firstFailure(checkAdjustment(deltaSeconds, this.limits), checkText("note", note, this.limits.noteMaxLength, true));
    if (invalid) return fail(invalid);
    if (!uuidPattern.test(customerId)) return fail(customerNotFound);
    return this.balances.run(customerId, nothingToRead, async (state) => {
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
    const state = { tx, customerId, balance: customer.balance, alert: customer.alert, now: this.deps.now(), unexpiredActiveCount: 0 };
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
      await this.balances.save(tx, customerId, customer.alert, balance);
      await this.deps.store.appendLedger(tx, [ledgerEntry(customerId, "REFUND", -takenSeconds, balance, null, details.note, details.actor)]);
    }
    return succeed({ takenSeconds, balance });
  }

  private async applyAdjustment(state: CustomerTransaction, deltaSeconds: number, details: GrantDetails): Promise<Outcome<Balance>> {
    const adjusted = arithmetic.adjust(state.balance, deltaSeconds, this.limits.balanceMaxSeconds);
    if (!adjusted.ok) {
      return adjusted.reason === "insufficient"
        ? fail({ code: "INSUFFICIENT_CREDITS", secondsRemaining: state.balance.secondsRemaining })
        : fail({ code: "BAD_USER_INPUT", field: "deltaSeconds", message: `balance may not exceed ${this.limits.balanceMaxSeconds} seconds` });
    }
    await this.balances.save(state.tx, state.customerId, state.alert, adjusted.balance);
    await this.deps.store.appendLedger(state.tx, [
      ledgerEntry(state.customerId, details.kind, deltaSeconds, adjusted.balance, null, details.note, details.actor),
    ]);
    return succeed(adjusted.balance);
  }
}
