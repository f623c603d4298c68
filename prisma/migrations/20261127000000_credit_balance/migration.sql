-- Balances belong to the credits module: they leave the customer table (owned by the customers
-- module) for a table of their own, one row per customer, with the same values.
CREATE TABLE "credit_balance" (
    "customer_id" UUID NOT NULL,
    "seconds_remaining" INTEGER NOT NULL DEFAULT 0,
    "seconds_reserved" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credit_balance_pkey" PRIMARY KEY ("customer_id")
);

ALTER TABLE "credit_balance" ADD CONSTRAINT "credit_balance_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

INSERT INTO "credit_balance" ("customer_id", "seconds_remaining", "seconds_reserved", "updated_at")
SELECT "id", "seconds_remaining", "seconds_reserved", "updated_at" FROM "customer";

ALTER TABLE "credit_balance"
  ADD CONSTRAINT "credit_balance_seconds_remaining_non_negative" CHECK ("seconds_remaining" >= 0),
  ADD CONSTRAINT "credit_balance_seconds_reserved_non_negative" CHECK ("seconds_reserved" >= 0);

ALTER TABLE "customer" DROP COLUMN "seconds_remaining", DROP COLUMN "seconds_reserved";
