// What the credits module answers without changing anything: balances as clients see them,
// reservations and the ledger, page by page.
import type { Caller } from "../../platform/auth";
import { Policy } from "../../platform/authorization";
import { badInput, fail, succeed, type Outcome } from "../../platform/failures";
import type { Page } from "../../platform/pagination";
import { uuidPattern } from "../../platform/validation";
import type { CustomerBalance } from "./balance";
import * as book from "./grant-book";
import type { CreditExpiry } from "./grant-book";
import type { GrantRecord } from "./grants.store";
import type { CreditsDependencies } from "./balance-transactions";
import type { UsageBucketRecord } from "./credits.store";
import { creditsPermissions } from "./credits.permissions";
import type { LedgerEntryRecord } from "./ledger";
import { presentReservation, type ReservationRecord, type ReservationStatus } from "./reservation";

const policy = new Policy(creditsPermissions);

export type UsageGranularity = "DAY" | "WEEK" | "MONTH";

const millisecondsPerDay = 86_400_000;
// Nothing was charged before this service existed; earlier dates (year 0) PostgreSQL refuses.
const earliestUsageMs = Date.UTC(1970, 0, 1);
const truncationUnits = { DAY: "day", WEEK: "week", MONTH: "month" } as const;

export class CreditsReads {
  constructor(private readonly deps: CreditsDependencies) {}

  /** Stored reservations by status, for metrics. */
  reservationCounts(): Promise<{ status: string; count: number }[]> {
    return this.deps.store.countByStatus(this.deps.database);
  }

  async balanceOf(customerId: string): Promise<CustomerBalance> {
    const balance = await this.deps.store.effectiveBalance(this.deps.database, customerId, this.deps.now());
    return { customerId, ...(balance ?? { secondsRemaining: 0, secondsReserved: 0 }) };
  }

  /** The soonest expiry among the customer's grants with seconds remaining, as of now. */
  async nextExpiryOf(customerId: string): Promise<CreditExpiry | null> {
    const now = this.deps.now();
    const rows = await this.deps.grantsStore.listGrants(this.deps.database, customerId, { includeSpent: false, page: undefined }, now);
    return book.nextExpiry(rows.map((row) => book.presentGrant(row.grant, row.returningSeconds, now)), now);
  }

  /** The customer's grants in spending order; spent and expired ones only with includeSpent. */
  async grantsOf(customerId: string, includeSpent: boolean, first: number, after: string | null | undefined): Promise<Outcome<Page<GrantRecord>>> {
    const scope = `${customerId}:${includeSpent}`;
    const page = this.deps.pager.request("grant", scope, first, after);
    if (!page.ok) return page;
    const now = this.deps.now();
    const rows = await this.deps.grantsStore.listGrants(this.deps.database, customerId, { includeSpent, page: page.value }, now);
    const grants = rows.map((row) => book.presentGrant(row.grant, row.returningSeconds, now));
    return succeed(this.deps.pager.page("grant", scope, grants, page.value, (grant) => grant.seq));
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

  /** Charged seconds per UTC period in [from, to), optionally split by endpoint. */
  async usage(customerId: string, from: Date, to: Date, granularity: UsageGranularity, byEndpoint: boolean): Promise<Outcome<UsageBucketRecord[]>> {
    const { usageRangeMaxDays, usageBucketsMax } = this.deps.config.credits;
    if (from.getTime() < earliestUsageMs) return badInput("from", "from must be in 1970 or later");
    if (!(from.getTime() < to.getTime())) return badInput("from", "from must be before to");
    if (to.getTime() - from.getTime() > usageRangeMaxDays * millisecondsPerDay) {
      return badInput("to", `the range may span at most ${usageRangeMaxDays} days`);
    }
    const range = { from, to, unit: truncationUnits[granularity] };
    const rows = byEndpoint
      ? await this.deps.store.usageByEndpoint(this.deps.database, customerId, range, usageBucketsMax)
      : await this.deps.store.usage(this.deps.database, customerId, range, usageBucketsMax);
    if (rows.length > usageBucketsMax) return badInput("from", `more than ${usageBucketsMax} buckets: narrow the range or choose a coarser granularity`);
    return succeed(rows);
  }

  async ledgerOf(customerId: string, first: number, after: string | null | undefined): Promise<Outcome<Page<LedgerEntryRecord>>> {
    const page = this.deps.pager.request("ledger", customerId, first, after);
    if (!page.ok) return page;
    const rows = await this.deps.store.listLedger(this.deps.database, customerId, page.value);
    return succeed(this.deps.pager.page("ledger", customerId, rows, page.value, (row) => row.id));
  }
}
