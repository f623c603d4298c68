// Reservations: reserve seconds before a job, confirm them with its actual duration, or
// release them. Each decides with the pure arithmetic in grant-book.ts (which grants hold,
// are charged, come back) inside one balance transaction (balance-transactions.ts) that writes
// the reservation, the grants, the balance and one ledger entry per grant moved together.
import { actorOf, type Caller } from "../../platform/auth";
import { ownCustomerId, Policy } from "../../platform/authorization";
import { fail, succeed, type Outcome } from "../../platform/failures";
import { checkText, firstFailure, uuidPattern } from "../../platform/validation";
import type { CustomerBalance } from "./balance";
import {
  customerNotFound,
  ledgerMoves,
  reservationNotFound,
  type BalanceTransactions,
  type CreditsDependencies,
  type CustomerTransaction,
} from "./balance-transactions";
import * as book from "./grant-book";
import type { Hold } from "./grant-book";
import { creditsPermissions } from "./credits.permissions";
import { checkEndpoint, checkIdempotencyKey, checkSeconds } from "./credits.validation";
import { presentReservation, type ReservationRecord } from "./reservation";

export interface ReserveResult {
  reservation: ReservationRecord;
  balance: CustomerBalance;
  replayed: boolean;
}

export interface SettleResult {
  reservation: ReservationRecord;
  balance: CustomerBalance;
}

export interface ReserveInput {
  customerId?: string | null;
  estimatedSeconds: number;
  endpoint: string;
  idempotencyKey?: string | null;
}

const activeLimitRetryAfterSeconds = 5;
const policy = new Policy(creditsPermissions);

export class ReservationsService {
  constructor(
    private readonly deps: CreditsDependencies,
    private readonly balances: BalanceTransactions,
  ) {}

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
    const readWithEarlier = () => this.deps.store.readForReserve(this.deps.database, customerId, idempotencyKey);
    return this.balances.run(customerId, readWithEarlier, async (state, earlier) => {
      const { tx, balance, now } = state;
      if (earlier) return this.replayReservation(earlier, input, { customerId, ...balance }, now);
      if (state.unexpiredActiveCount >= this.limits.activeReservationsPerCustomerMax) {
        return fail({ code: "TOO_MANY_REQUESTS", retryAfterSeconds: activeLimitRetryAfterSeconds });
      }
      const held = book.hold(state.grants, input.estimatedSeconds, now);
      if (!held) return fail({ code: "INSUFFICIENT_CREDITS", secondsRemaining: balance.secondsRemaining });
      const reservation = await this.deps.store.createReservation(tx, {
        customerId,
        endpoint: input.endpoint,
        reservedSeconds: input.estimatedSeconds,
        idempotencyKey,
        actor: actorOf(caller),
        expiresAt: new Date(now.getTime() + this.limits.reservationTtlSeconds * 1000),
      }, held.holds);
      const after = await this.balances.commit(state, held.grants, ledgerMoves(held.moves, { reservationId: reservation.id, note: null, actor: actorOf(caller) }));
      return succeed({ reservation, balance: { customerId, ...after }, replayed: false });
    });
  }

  async confirm(caller: Caller, reservationId: string, actualSeconds: number): Promise<Outcome<SettleResult>> {
    const invalid = checkSeconds("actualSeconds", actualSeconds, 0, this.limits.actualMaxSeconds);
    if (invalid) return fail(invalid);
    return this.settle(caller, reservationId, "Mutation.confirmReservation", async (state, reservation, holds) => {
      const { tx, customerId, balance, now } = state;
      if (reservation.status === "CONFIRMED" && reservation.actualSeconds === actualSeconds) {
        return succeed({ reservation, balance: { customerId, ...balance } });
      }
      if (reservation.status !== "ACTIVE") return fail({ code: "RESERVATION_SETTLED", status: reservation.status });
      const confirmation = book.confirm(state.grants, holds, actualSeconds, now);
      const settled = await this.balances.settleActive(tx, reservation, {
        status: "CONFIRMED",
        actualSeconds,
        chargedSeconds: confirmation.chargedSeconds,
        unbilledSeconds: confirmation.unbilledSeconds,
        settledAt: now,
      });
      const note = confirmation.unbilledSeconds > 0 ? `${confirmation.unbilledSeconds} s unbilled: balance ran out` : null;
      const after = await this.balances.commit(state, confirmation.grants, ledgerMoves(confirmation.moves, { reservationId: reservation.id, note, actor: actorOf(caller) }));
      return succeed({ reservation: settled, balance: { customerId, ...after } });
    });
  }

  async release(caller: Caller, reservationId: string, reason: string | null | undefined): Promise<Outcome<SettleResult>> {
    const invalid = checkText("reason", reason, this.limits.reasonMaxLength, false);
    if (invalid) return fail(invalid);
    return this.settle(caller, reservationId, "Mutation.releaseReservation", async (state, reservation, holds) => {
      const { tx, customerId, now } = state;
      if (reservation.status !== "ACTIVE") return fail({ code: "RESERVATION_SETTLED", status: reservation.status });
      const released = book.release(state.grants, holds, "RELEASE", now);
      const settled = await this.balances.settleActive(tx, reservation, {
        status: "RELEASED",
        reason: reason ?? null,
        settledAt: now,
      });
      const after = await this.balances.commit(state, released.grants, ledgerMoves(released.moves, { reservationId: reservation.id, note: reason ?? null, actor: actorOf(caller) }));
      return succeed({ reservation: settled, balance: { customerId, ...after } });
    });
  }

  private reservingCustomer(caller: Caller, requestedCustomerId: string | null | undefined): Outcome<string> {
    const denied = policy.check("Mutation.reserveCredits", caller);
    if (denied) return fail(denied);
    // An empty customerId names no one: the caller's own account, as when it is omitted.
    const customerId = requestedCustomerId || ownCustomerId(caller);
    if (!customerId) return fail({ code: "BAD_USER_INPUT", field: "customerId", message: "staff must name customerId" });
    const notOwner = policy.checkOwner("Mutation.reserveCredits", caller, customerId);
    if (notOwner) return fail(notOwner === "hidden" ? customerNotFound : notOwner);
    if (!uuidPattern.test(customerId)) return fail(customerNotFound);
    return succeed(customerId);
  }

  private replayReservation(earlier: ReservationRecord, input: ReserveInput, balance: CustomerBalance, now: Date): Outcome<ReserveResult> {
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
    work: (state: CustomerTransaction, reservation: ReservationRecord, holds: Hold[]) => Promise<Outcome<SettleResult>>,
  ): Promise<Outcome<SettleResult>> {
    const denied = policy.check(operation, caller);
    if (denied) return fail(denied);
    if (!uuidPattern.test(reservationId)) return fail(reservationNotFound);
    // Whose lock to take: a customer or device settles its own reservations, so its customer's
    // lock, with no read first (the plugin's common case); staff, the reservation's owner's.
    const customerId = ownCustomerId(caller) ?? (await this.deps.store.findReservation(this.deps.database, reservationId))?.customerId;
    if (!customerId) return fail(reservationNotFound);
    // Read with the customer's reservations, with its holds: the transaction checks it is still
    // current. Expired ones are presented as EXPIRED here, and settled as such first.
    const readCurrent = () => this.deps.store.readForSettle(this.deps.database, customerId, reservationId);
    return this.balances.run(customerId, readCurrent, async (state, current) => {
      if (!current || current.reservation.customerId !== customerId) return fail(reservationNotFound);
      const notOwner = policy.checkOwner(operation, caller, current.reservation.customerId);
      if (notOwner) return fail(notOwner === "hidden" ? reservationNotFound : notOwner);
      const presented = presentReservation(current.reservation, state.now);
      const holds = presented.status === "ACTIVE" ? this.balances.holdsOfReservation(presented, current.holds) : [];
      return work(state, presented, holds);
    });
  }
}
