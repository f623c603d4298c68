-- Counts the balance transactions committed on a customer (each bumps it by one in the
-- statement that ends it). What a transaction reads before it begins (the customer's ACTIVE
-- reservations, a reservation to settle, an idempotency key) is still current when the version
-- read with it equals the one the transaction then locks: otherwise the transaction is retried
-- from the reads, under the customer's advisory lock.
ALTER TABLE "credit_balance" ADD COLUMN "version" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "credit_balance" ADD CONSTRAINT "credit_balance_version_not_negative" CHECK ("version" >= 0);

