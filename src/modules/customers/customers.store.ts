// The customers module's only door to the database.
import type { Tier } from "./customer";
import { z } from "zod";
import { Prisma } from "../../generated/prisma/client";
import type { DatabaseClient, Transaction } from "../../platform/database";
import { column, selectRows } from "../../platform/rows";
import type { PageRequest } from "../../platform/pagination";
import type { CustomerRecord } from "./customer";

export interface NewCustomer {
  email: string | null;
  tier: Tier;
  stripeCustomerId: string | null;
}

/** What a support search matches: part of an email, a whole Stripe customer id, or one customer id (given, or a license key's owner). */
export interface CustomerSearch {
  emailFragment: string;
  exactText: string;
  exactId: string | undefined;
}

const likeSpecialCharacters = /[\\%_]/g;
const idRow = z.object({ id: column.uuid }).transform((row) => row.id);

export class CustomersStore {
  async findById(db: DatabaseClient, customerId: string): Promise<CustomerRecord | undefined> {
    return (await db.customer.findUnique({ where: { id: customerId } })) ?? undefined;
  }

  async findByEmail(db: DatabaseClient, email: string): Promise<CustomerRecord | undefined> {
    return (await db.customer.findUnique({ where: { email } })) ?? undefined;
  }

  async findByStripeCustomerId(db: DatabaseClient, stripeCustomerId: string): Promise<CustomerRecord | undefined> {
    return (await db.customer.findUnique({ where: { stripeCustomerId } })) ?? undefined;
  }

  async insert(tx: Transaction, customer: NewCustomer): Promise<CustomerRecord> {
    return tx.customer.create({ data: customer });
  }

  async linkStripeCustomer(tx: Transaction, customerId: string, stripeCustomerId: string): Promise<CustomerRecord> {
    return tx.customer.update({ where: { id: customerId }, data: { stripeCustomerId } });
  }

  async setTier(tx: Transaction, customerId: string, tier: Tier): Promise<void> {
    await tx.$executeRaw`UPDATE customer SET tier = ${tier}::"Tier", updated_at = now() WHERE id = ${customerId}::uuid`;
  }

  async search(db: DatabaseClient, search: CustomerSearch, page: PageRequest): Promise<CustomerRecord[]> {
    const pattern = `%${search.emailFragment.replace(likeSpecialCharacters, (character) => `\\${character}`)}%`;
    const matchingIds = await selectRows(db, "customers.search", idRow, Prisma.sql`
      SELECT id FROM customer
      WHERE (email LIKE ${pattern} OR stripe_customer_id = ${search.exactText}
             OR id::text = ${search.exactId ?? ""})
        AND (${page.afterSeq ?? null}::bigint IS NULL OR seq < ${page.afterSeq ?? null}::bigint)
      ORDER BY seq DESC LIMIT ${page.first + 1}`);
    if (matchingIds.length === 0) return [];
    const customers = await db.customer.findMany({
      where: { id: { in: matchingIds } },
      orderBy: { seq: "desc" },
    });
    return customers;
  }
}
