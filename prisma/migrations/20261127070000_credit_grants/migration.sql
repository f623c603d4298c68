-- Credit grants: every addition of seconds is a grant with a source and an optional expiry, and
-- a reservation records how many seconds it holds of each grant. credit_balance stays the sum
-- over the customer's grants (remaining, held), written in the same transactions.
ALTER TYPE "LedgerEntryKind" ADD VALUE 'GRANT_EXPIRED';

CREATE TYPE "CreditGrantSource" AS ENUM ('SUBSCRIPTION', 'PURCHASE', 'STAFF', 'INITIAL');

-- fillfactor 80: every reservation rewrites its grants' counters; room on the page keeps those
-- updates HOT, so they touch no index (and take no index page into Serializable conflicts).
CREATE TABLE "credit_grant" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "seq" BIGSERIAL NOT NULL,
    "customer_id" UUID NOT NULL,
    "source" "CreditGrantSource" NOT NULL,
    "granted_seconds" INTEGER NOT NULL,
    "remaining_seconds" INTEGER NOT NULL,
    "held_seconds" INTEGER NOT NULL DEFAULT 0,
    "charged_seconds" INTEGER NOT NULL DEFAULT 0,
    "expired_seconds" INTEGER NOT NULL DEFAULT 0,
    "taken_back_seconds" INTEGER NOT NULL DEFAULT 0,
    "ledger_opening_seconds" INTEGER NOT NULL DEFAULT 0,
    "expires_at" TIMESTAMPTZ(3),
    "expiry_settled_at" TIMESTAMPTZ(3),
    "expiry_notice_queued_at" TIMESTAMPTZ(3),
    "origin" VARCHAR(300),
    "note" VARCHAR(1000),
    "actor" VARCHAR(300) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credit_grant_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "credit_grant_granted_positive" CHECK ("granted_seconds" > 0),
    CONSTRAINT "credit_grant_parts_non_negative" CHECK (
      "remaining_seconds" >= 0 AND "held_seconds" >= 0 AND "charged_seconds" >= 0
      AND "expired_seconds" >= 0 AND "taken_back_seconds" >= 0 AND "ledger_opening_seconds" >= 0),
    -- Every granted second is in exactly one place.
    CONSTRAINT "credit_grant_parts_sum_to_granted" CHECK (
      "granted_seconds" = "remaining_seconds" + "held_seconds" + "charged_seconds" + "expired_seconds" + "taken_back_seconds"),
    -- Once its expiry is settled (GRANT_EXPIRED written), nothing remains: returns expire at once.
    CONSTRAINT "credit_grant_settled_has_nothing_remaining" CHECK (
      "expiry_settled_at" IS NULL OR ("expires_at" IS NOT NULL AND "remaining_seconds" = 0))
) WITH (fillfactor = 80);

CREATE UNIQUE INDEX "credit_grant_seq_key" ON "credit_grant"("seq");
CREATE UNIQUE INDEX "credit_grant_origin_key" ON "credit_grant"("origin");
CREATE INDEX "credit_grant_customer_id_seq_idx" ON "credit_grant"("customer_id", "seq");
-- The sweeper's and the expiry notices' search: grants whose expiry is still to be settled.
CREATE INDEX "credit_grant_unsettled_expiry_idx" ON "credit_grant"("expires_at")
  WHERE "expiry_settled_at" IS NULL AND "expires_at" IS NOT NULL;

ALTER TABLE "credit_grant" ADD CONSTRAINT "credit_grant_customer_id_fkey"
  FOREIGN KEY ("customer_id") REFERENCES "credit_balance"("customer_id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "credit_reservation_hold" (
    "reservation_id" UUID NOT NULL,
    "grant_id" UUID NOT NULL,
    "held_seconds" INTEGER NOT NULL,

    CONSTRAINT "credit_reservation_hold_pkey" PRIMARY KEY ("reservation_id", "grant_id"),
    CONSTRAINT "credit_reservation_hold_positive" CHECK ("held_seconds" > 0)
);

ALTER TABLE "credit_reservation_hold" ADD CONSTRAINT "credit_reservation_hold_reservation_id_fkey"
  FOREIGN KEY ("reservation_id") REFERENCES "credit_reservation"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "credit_reservation_hold" ADD CONSTRAINT "credit_reservation_hold_grant_id_fkey"
  FOREIGN KEY ("grant_id") REFERENCES "credit_grant"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- A hold is a record of where a reservation's seconds came from: written once, never changed.
CREATE FUNCTION "credit_reservation_hold_is_final"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'credit_reservation_hold rows are written once';
END $$;
CREATE TRIGGER "credit_reservation_hold_is_final" BEFORE UPDATE OR DELETE ON "credit_reservation_hold"
  FOR EACH ROW EXECUTE FUNCTION "credit_reservation_hold_is_final"();

ALTER TABLE "ledger_entry" ADD COLUMN "grant_id" UUID;
ALTER TABLE "ledger_entry" ADD CONSTRAINT "ledger_entry_grant_id_fkey"
  FOREIGN KEY ("grant_id") REFERENCES "credit_grant"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Every balance becomes one INITIAL grant that never expires, holding what ACTIVE reservations
-- hold; no balance changes. Its remaining seconds at this point have no ledger entry naming the
-- grant (the history before grants names none), so they are its ledger opening.
INSERT INTO "credit_grant" ("customer_id", "source", "granted_seconds", "remaining_seconds", "held_seconds",
                            "ledger_opening_seconds", "note", "actor", "created_at")
SELECT "customer_id", 'INITIAL', "seconds_remaining" + "seconds_reserved", "seconds_remaining", "seconds_reserved",
       "seconds_remaining", 'the balance before grants', 'system', "updated_at"
FROM "credit_balance" WHERE "seconds_remaining" + "seconds_reserved" > 0;

INSERT INTO "credit_reservation_hold" ("reservation_id", "grant_id", "held_seconds")
SELECT r."id", g."id", r."reserved_seconds"
FROM "credit_reservation" r JOIN "credit_grant" g ON g."customer_id" = r."customer_id"
WHERE r."status" = 'ACTIVE';
