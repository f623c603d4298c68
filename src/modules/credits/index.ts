// The credits module's front door: balances, reservations and the ledger. It owns the
// credit_balance, credit_reservation and ledger_entry tables; only credits.store.ts writes them.
import fs from "node:fs";
import path from "node:path";
import { CreditsService, type CreditsDependencies } from "./credits.service";
import type { DatabaseClient } from "../../platform/database";
import type { OutboxHandler } from "../../platform/outbox/outbox.worker";
import { lowBalanceEmailJobKind } from "./balance-transactions";
import { CreditsStore } from "./credits.store";

export { creditsResolvers } from "./credits.resolvers";
export { creditsPermissions } from "./credits.permissions";
export { creditsInvariants } from "./credits.audit";
export { expirySweeper } from "./expiry-sweeper";
export type { CreditsService, GrantDetails, ReserveResult, SettleResult } from "./credits.service";
export type { Balance } from "./balance";

export const creditsTypeDefs = fs.readFileSync(path.join(__dirname, "schema.graphql"), "utf8");

/** The outbox jobs this module queues, by kind: the low-balance email. */
export function creditsOutboxJobs(credits: CreditsService): Record<string, OutboxHandler> {
  return { [lowBalanceEmailJobKind]: (job) => credits.deliverLowBalanceAlert(job.payload) };
}

export function createCreditsService(deps: Omit<CreditsDependencies, "store">): CreditsService {
  return new CreditsService({ ...deps, store: new CreditsStore() });
}

/** What other modules may read of the ledger outside a request (the billing audit). */
export interface LedgerReader {
  grantCountsByActorPrefix(db: DatabaseClient, actorPrefix: string): Promise<Map<string, number>>;
}

export function createLedgerReader(): LedgerReader {
  const store = new CreditsStore();
  return { grantCountsByActorPrefix: (db, actorPrefix) => store.grantCountsByActorPrefix(db, actorPrefix) };
}
