// The credits module's front door: balances, grants, reservations and the ledger. It owns the
// credit_balance, credit_grant, credit_reservation, credit_reservation_hold and ledger_entry
// tables; only credits.store.ts and grants.store.ts write them.
import fs from "node:fs";
import path from "node:path";
import { CreditsService, type CreditsDependencies } from "./credits.service";
import type { DatabaseClient } from "../../platform/database";
import type { OutboxHandler } from "../../platform/outbox/outbox.worker";
import { expiryNoticeJobKind } from "./alerts.service";
import { lowBalanceEmailJobKind } from "./balance-transactions";
import { CreditsStore } from "./credits.store";
import { GrantsStore } from "./grants.store";

export { creditsResolvers } from "./credits.resolvers";
export { creditsPermissions } from "./credits.permissions";
export { creditsInvariants } from "./credits.audit";
export { expirySweeper } from "./expiry-sweeper";
export type { CreditsService, GrantDetails, ReserveResult, SettleResult } from "./credits.service";
export type { Balance } from "./balance";
export type { GrantSource } from "./grant-book";

export const creditsTypeDefs = fs.readFileSync(path.join(__dirname, "schema.graphql"), "utf8");

/** The outbox jobs this module queues, by kind: the low-balance email and the expiry notice. */
export function creditsOutboxJobs(credits: CreditsService): Record<string, OutboxHandler> {
  return {
    [lowBalanceEmailJobKind]: (job) => credits.deliverLowBalanceAlert(job.payload),
    [expiryNoticeJobKind]: (job) => credits.deliverExpiryNotice(job.payload),
  };
}

export function createCreditsService(deps: Omit<CreditsDependencies, "store" | "grantsStore">): CreditsService {
  return new CreditsService({ ...deps, store: new CreditsStore(), grantsStore: new GrantsStore() });
}

/** What other modules may read of the ledger outside a request (the billing audit). */
export interface LedgerReader {
  grantCountsByActorPrefix(db: DatabaseClient, actorPrefix: string): Promise<Map<string, number>>;
}

export function createLedgerReader(): LedgerReader {
  const store = new CreditsStore();
  return { grantCountsByActorPrefix: (db, actorPrefix) => store.grantCountsByActorPrefix(db, actorPrefix) };
}
