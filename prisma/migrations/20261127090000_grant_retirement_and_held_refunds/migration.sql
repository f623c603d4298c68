-- Two additions to credit grants, from review.
--
-- retired_at: a grant with nothing remaining or held that can no longer change (it never
-- expires, or its expiry is settled) is retired, once and for good. Balance transactions read
-- a customer's grants through a partial index of the grants not retired, so that PostgreSQL
-- fetches, and takes Serializable predicate locks on, the few live grants only: reading every
-- grant a customer ever had put locks on pages (more than 2 tuples) or the whole table (more
-- than 32) and made unrelated customers' transactions abort each other.
--
-- pending_take_back_seconds: a refund takes back what remains of its grant at once; what a
-- running job holds of it is taken back when the job gives it back (a release, or a
-- confirmation that used less), as far as the job did not use it.
ALTER TABLE "credit_grant"
  ADD COLUMN "retired_at" TIMESTAMPTZ(3),
  ADD COLUMN "pending_take_back_seconds" INTEGER NOT NULL DEFAULT 0,
  ADD CONSTRAINT "credit_grant_retired_has_nothing_left" CHECK (
    "retired_at" IS NULL OR ("remaining_seconds" = 0 AND "held_seconds" = 0 AND ("expires_at" IS NULL OR "expiry_settled_at" IS NOT NULL))),
  ADD CONSTRAINT "credit_grant_pending_take_back_within_held" CHECK (
    "pending_take_back_seconds" >= 0 AND "pending_take_back_seconds" <= "held_seconds");

UPDATE "credit_grant" SET "retired_at" = CURRENT_TIMESTAMP
WHERE "remaining_seconds" = 0 AND "held_seconds" = 0 AND ("expires_at" IS NULL OR "expiry_settled_at" IS NOT NULL);

CREATE INDEX "credit_grant_live_idx" ON "credit_grant"("customer_id", "seq") WHERE "retired_at" IS NULL;
