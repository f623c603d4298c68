// Low-balance alerts: the customer (or staff) sets a threshold; the balance transaction that
// takes secondsRemaining below it queues one email (balance-transactions.ts), and the alert is
// armed again once the balance is back at the threshold or above. Expiry notices: one email
// EXPIRY_NOTICE_DAYS before a grant of an hour or more expires with seconds unspent.
import type { Caller } from "../../platform/auth";
import { ownCustomerId, Policy } from "../../platform/authorization";
import { PermanentJobError } from "../../platform/outbox/outbox.worker";
import { badInput, fail, succeed, type Outcome } from "../../platform/failures";
import { uuidPattern } from "../../platform/validation";
import type { CustomerRecord } from "../customers";
import { newLowBalanceAlert } from "./balance";
import { customerNotFound, nothingToRead, type BalanceTransactions, type CreditsDependencies } from "./balance-transactions";
import { secondsPerHour } from "./balance";
import { creditsPermissions } from "./credits.permissions";

const policy = new Policy(creditsPermissions);

export const expiryNoticeJobKind = "grant_expiry_notice";
const millisecondsPerDay = 86_400_000;

function expiryText(expiry: unknown): string | undefined {
  if (typeof expiry !== "object" || expiry === null) return undefined;
  const { seconds, at } = expiry as { seconds?: unknown; at?: unknown };
  if (typeof seconds !== "number" || typeof at !== "string") return undefined;
  return expirySentence("it", seconds, at);
}

/** "1 h of it expire at … (UTC) unless used first.": both emails say it the same way. */
function expirySentence(of: string, seconds: number, at: string): string {
  return `${durationText(seconds)} of ${of} expire at ${at} (UTC) unless used first.`;
}
/** Seconds for people: "1 h 5 min", "8 min 20 s", "17 s". */
export function durationText(seconds: number): string {
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  const parts = [hours > 0 ? `${hours} h` : "", minutes > 0 ? `${minutes} min` : "", rest > 0 || seconds === 0 ? `${rest} s` : ""];
  return parts.filter(Boolean).join(" ");
}

export class AlertsService {
  constructor(
    private readonly deps: CreditsDependencies,
    private readonly balances: BalanceTransactions,
  ) {}

  async setLowBalanceAlert(caller: Caller, requestedCustomerId: string | null | undefined, thresholdSeconds: number | null): Promise<Outcome<CustomerRecord>> {
    const denied = policy.check("Mutation.setLowBalanceAlert", caller);
    if (denied) return fail(denied);
    const customerId = requestedCustomerId || ownCustomerId(caller);
    if (!customerId) return badInput("customerId", "staff must name customerId");
    const notOwner = policy.checkOwner("Mutation.setLowBalanceAlert", caller, customerId);
    if (notOwner) return fail(notOwner === "hidden" ? customerNotFound : notOwner);
    if (!uuidPattern.test(customerId)) return fail(customerNotFound);
    const { balanceMaxSeconds } = this.deps.config.credits;
    // 0 could never fire (a balance cannot fall below it): null is how an alert is turned off.
    if (thresholdSeconds !== null && (!Number.isSafeInteger(thresholdSeconds) || thresholdSeconds < 1 || thresholdSeconds > balanceMaxSeconds)) {
      return badInput("thresholdSeconds", `thresholdSeconds must be from 1 to ${balanceMaxSeconds}, or null to turn the alert off`);
    }
    return this.balances.run(customerId, nothingToRead, async (state) => {
      // No email for a balance already below a new threshold: it did not fall, it was there.
      const alert = newLowBalanceAlert(thresholdSeconds, state.balance.secondsRemaining);
      await this.balances.commit(state, state.grants, [], { alert });
      const customer = await this.deps.customers.findById(state.tx, customerId);
      return customer ? succeed(customer) : fail(customerNotFound);
    });
  }

  lowBalanceThresholdOf(customerId: string): Promise<number | null> {
    return this.deps.store.lowBalanceThreshold(this.deps.database, customerId);
  }

  /** Where a customer's emails go; a customer without an address makes the job fail for good. */
  private async emailOf(customerId: string): Promise<string> {
    const customer = await this.deps.customers.findById(this.deps.database, customerId);
    if (!customer?.email) throw new PermanentJobError(`customer ${customerId} has no email address`);
    return customer.email;
  }

  /** Outbox handler: tells the customer their balance fell below their threshold. */
  async deliverLowBalanceAlert(payload: Record<string, unknown>): Promise<void> {
    const { customerId, secondsRemaining, thresholdSeconds } = payload;
    if (typeof customerId !== "string" || typeof secondsRemaining !== "number" || typeof thresholdSeconds !== "number") {
      throw new PermanentJobError("low-balance job without customerId, secondsRemaining and thresholdSeconds");
    }
    const email = await this.emailOf(customerId);
    // Past the daily cap the alert is dropped, not retried: the next crossing tomorrow tells again.
    const sentToday = await this.deps.dailyLimits.hit(`low-balance-email:${customerId}`, this.deps.now());
    if (sentToday > this.deps.config.credits.lowBalanceEmailsPerDay) return;
    await this.deps.mailer.send({
      to: email,
      subject: "Your Splice processing time is running low",
      text: [
        `Your processing time fell to ${durationText(secondsRemaining)}, below the ${durationText(thresholdSeconds)} you asked to be told about.`,
        ...[expiryText(payload.nextExpiry)].filter((line) => line !== undefined),
        "",
        "Buy an hour pack or change your plan in the dashboard to keep processing.",
        "You will hear from us again the next time it falls below after rising above it.",
      ].join("\n"),
    });
  }

  /**
   * Queues one expiry notice per grant of an hour or more that expires within EXPIRY_NOTICE_DAYS
   * with seconds left. Each is claimed by a conditional UPDATE in the transaction that queues
   * its email, so instances sweeping at once queue it exactly once.
   */
  async queueExpiryNotices(): Promise<number> {
    const now = this.deps.now();
    const until = new Date(now.getTime() + this.deps.config.credits.expiryNoticeDays * millisecondsPerDay);
    const due = await this.deps.grantsStore.grantsDueExpiryNotice(this.deps.database, now, until, secondsPerHour, this.deps.config.sweeper.batchSize);
    let queued = 0;
    for (const candidate of due) {
      const claimed = await this.deps.transactor.serializable(async (tx) => {
        const notice = await this.deps.grantsStore.claimExpiryNotice(tx, candidate.grantId, now);
        if (!notice) return succeed(false);
        await this.deps.outbox.enqueue(tx, {
          kind: expiryNoticeJobKind,
          customerId: notice.customerId,
          payload: { customerId: notice.customerId, grantId: notice.grantId, remainingSeconds: notice.remainingSeconds, expiresAt: notice.expiresAt.toISOString() },
        });
        return succeed(true);
      });
      if (claimed.ok && claimed.value) queued += 1;
    }
    return queued;
  }

  /** Outbox handler: tells the customer that a grant's unspent seconds are about to expire. */
  async deliverExpiryNotice(payload: Record<string, unknown>): Promise<void> {
    const { customerId, remainingSeconds, expiresAt } = payload;
    if (typeof customerId !== "string" || typeof remainingSeconds !== "number" || typeof expiresAt !== "string") {
      throw new PermanentJobError("expiry-notice job without customerId, remainingSeconds and expiresAt");
    }
    await this.deps.mailer.send({
      to: await this.emailOf(customerId),
      subject: "Some of your Splice processing time expires soon",
      text: [
        expirySentence("your processing time", remainingSeconds, expiresAt),
        "",
        "Processing always spends the hours that expire soonest first.",
      ].join("\n"),
    });
  }
}
