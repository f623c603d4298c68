// The customers module's only door to the database.
import type { Tier } from "./customer";
import { z } from "zod";
import { Prisma } from "../../generated/prisma/client";
import type { DatabaseClient, Transaction } from "../../platform/database";
import { column, selectRow, selectRows, execute } from "../../platform/rows";
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
const customerColumns = Prisma.sql`id, seq, email, stripe_customer_id, tier::text AS tier, created_at`;
const customerRow = z
  .object({
    id: column.uuid,
    seq: column.bigint,
    email: column.text.nullable(),
    stripe_customer_id: column.text.nullable(),
    tier: z.enum(["STARTER", "PRO", "STUDIO"]),
    created_at: column.timestamp,
  })
  .transform(
    (row): CustomerRecord => ({
      id: row.id,
      seq: row.seq,
      email: row.email,
      stripeCustomerId: row.stripe_customer_id,
      tier: row.tier,
      createdAt: row.created_at,
    }),
  );

export class CustomersStore {
  // Read on other modules' hot paths (a license's seats, a device's activation): raw SQL, since a
  // Prisma model query costs about 1 ms of CPU to compile on this version.
  async findById(db: DatabaseClient, customerId: string): Promise<CustomerRecord | undefined> {
    return selectRow(db, "customers.findById", customerRow, Prisma.sql`SELECT ${customerColumns} FROM customer WHERE id = ${customerId}::uuid`);
  }

  async findByEmail(db: DatabaseClient, email: string): Promise<CustomerRecord | undefined> {
    return selectRow(db, "customers.findByEmail", customerRow, Prisma.sql`SELECT ${customerColumns} FROM customer WHERE email = ${email}`);
  }

  async findByStripeCustomerId(db: DatabaseClient, stripeCustomerId: string): Promise<CustomerRecord | undefined> {
    return selectRow(db, "customers.findByStripeCustomerId", customerRow, Prisma.sql`
      SELECT ${customerColumns} FROM customer WHERE stripe_customer_id = ${stripeCustomerId}`);
  }

  async insert(tx: Transaction, customer: NewCustomer): Promise<CustomerRecord> {
    return tx.customer.create({ data: customer });
  }

  async linkStripeCustomer(tx: Transaction, customerId: string, stripeCustomerId: string): Promise<CustomerRecord> {
    return tx.customer.update({ where: { id: customerId }, data: { stripeCustomerId } });
  }

  async setTier(tx: Transaction, customerId: string, tier: Tier): Promise<void> {
    await execute(tx, "customers.setTier", Prisma.sql`UPDATE customer SET tier = ${tier}::"Tier", updated_at = now() WHERE id = ${customerId}::uuid`);
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
