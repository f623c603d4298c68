import type { DatabaseClient } from "../../platform/database";

/** A customer's plan; configuration gives each its monthly seconds and device seats. */
export type Tier = "STARTER" | "PRO" | "STUDIO";

export interface CustomerRecord {
  id: string;
  seq: bigint;
  email: string | null;
  stripeCustomerId: string | null;
  tier: Tier;
  createdAt: Date;
}

/** What other modules may read of customers, inside their own transaction when `db` is one. */
export interface CustomerDirectory {
  findById(db: DatabaseClient, customerId: string): Promise<CustomerRecord | undefined>;
}
