
-- CreateEnum
CREATE TYPE "Tier" AS ENUM ('STARTER', 'PRO', 'STUDIO');

-- CreateEnum
CREATE TYPE "ReservationStatus" AS ENUM ('ACTIVE', 'CONFIRMED', 'RELEASED', 'EXPIRED');

-- CreateEnum
CREATE TYPE "LedgerEntryKind" AS ENUM ('GRANT', 'RESERVE', 'CONFIRM', 'RELEASE', 'EXPIRE', 'ADJUSTMENT', 'REFUND');

-- CreateTable
CREATE TABLE "customer" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "seq" BIGSERIAL NOT NULL,
    "email" VARCHAR(254),
    "stripe_customer_id" VARCHAR(255),
    "tier" "Tier" NOT NULL DEFAULT 'STARTER',
    "seconds_remaining" INTEGER NOT NULL,
    "seconds_reserved" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "customer_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "credit_reservation" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "seq" BIGSERIAL NOT NULL,
    "customer_id" UUID NOT NULL,
    "endpoint" VARCHAR(128) NOT NULL,
    "reserved_seconds" INTEGER NOT NULL,
    "actual_seconds" INTEGER,
    "charged_seconds" INTEGER,
    "unbilled_seconds" INTEGER,
    "status" "ReservationStatus" NOT NULL DEFAULT 'ACTIVE',
    "reason" VARCHAR(1000),
    "idempotency_key" VARCHAR(255),
    "actor" VARCHAR(300) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "settled_at" TIMESTAMPTZ(3),

    CONSTRAINT "credit_reservation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ledger_entry" (
    "id" BIGSERIAL NOT NULL,
    "customer_id" UUID NOT NULL,
    "kind" "LedgerEntryKind" NOT NULL,
    "delta_seconds" INTEGER NOT NULL,
    "balance_after" INTEGER NOT NULL,
    "reservation_id" UUID,
    "note" VARCHAR(1000),
    "actor" VARCHAR(300) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ledger_entry_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "customer_seq_key" ON "customer"("seq");

-- CreateIndex
CREATE UNIQUE INDEX "customer_email_key" ON "customer"("email");

-- CreateIndex
CREATE UNIQUE INDEX "customer_stripe_customer_id_key" ON "customer"("stripe_customer_id");

-- CreateIndex
CREATE UNIQUE INDEX "credit_reservation_seq_key" ON "credit_reservation"("seq");

-- CreateIndex
CREATE INDEX "credit_reservation_customer_id_status_seq_idx" ON "credit_reservation"("customer_id", "status", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "credit_reservation_customer_id_idempotency_key_key" ON "credit_reservation"("customer_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "ledger_entry_customer_id_id_idx" ON "ledger_entry"("customer_id", "id");

-- CreateIndex
CREATE INDEX "ledger_entry_reservation_id_idx" ON "ledger_entry"("reservation_id");

-- AddForeignKey
ALTER TABLE "credit_reservation" ADD CONSTRAINT "credit_reservation_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entry" ADD CONSTRAINT "ledger_entry_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entry" ADD CONSTRAINT "ledger_entry_reservation_id_fkey" FOREIGN KEY ("reservation_id") REFERENCES "credit_reservation"("id") ON DELETE RESTRICT ON UPDATE CASCADE;


-- Invariants the database guards itself (Prisma's schema language cannot express them).

ALTER TABLE "customer"
  ADD CONSTRAINT "customer_seconds_remaining_non_negative" CHECK ("seconds_remaining" >= 0),
  ADD CONSTRAINT "customer_seconds_reserved_non_negative" CHECK ("seconds_reserved" >= 0),
  ADD CONSTRAINT "customer_email_normalised" CHECK ("email" IS NULL OR "email" = lower(btrim("email")));

ALTER TABLE "credit_reservation"
  ADD CONSTRAINT "credit_reservation_reserved_positive" CHECK ("reserved_seconds" > 0),
  -- One terminal state per reservation: the settlement columns are set exactly when its status says.
  ADD CONSTRAINT "credit_reservation_settlement_matches_status" CHECK (
    ("status" = 'ACTIVE' AND "settled_at" IS NULL AND "actual_seconds" IS NULL
       AND "charged_seconds" IS NULL AND "unbilled_seconds" IS NULL)
    OR ("status" = 'CONFIRMED' AND "settled_at" IS NOT NULL AND "actual_seconds" >= 0
       AND "charged_seconds" >= 0 AND "unbilled_seconds" >= 0
       AND "charged_seconds" + "unbilled_seconds" = "actual_seconds")
    OR ("status" IN ('RELEASED', 'EXPIRED') AND "settled_at" IS NOT NULL AND "actual_seconds" IS NULL
       AND "charged_seconds" IS NULL AND "unbilled_seconds" IS NULL)
  );

ALTER TABLE "ledger_entry"
  ADD CONSTRAINT "ledger_entry_balance_after_non_negative" CHECK ("balance_after" >= 0),
  -- Only a confirmation that charged exactly what was reserved records a zero change.
  ADD CONSTRAINT "ledger_entry_delta_non_zero" CHECK ("delta_seconds" <> 0 OR "kind" = 'CONFIRM');

-- The sweeper looks for ACTIVE reservations past their expiry.
CREATE INDEX "credit_reservation_active_expires_at_idx" ON "credit_reservation"("expires_at") WHERE "status" = 'ACTIVE';

-- A settled reservation never changes again.
CREATE FUNCTION "credit_reservation_settled_is_final"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD."status" <> 'ACTIVE' THEN
    RAISE EXCEPTION 'reservation % is already %', OLD."id", OLD."status" USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER "credit_reservation_settled_is_final" BEFORE UPDATE ON "credit_reservation"
  FOR EACH ROW EXECUTE FUNCTION "credit_reservation_settled_is_final"();

-- The ledger is append-only.
CREATE FUNCTION "ledger_entry_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger entries are append-only' USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER "ledger_entry_append_only" BEFORE UPDATE OR DELETE ON "ledger_entry"
  FOR EACH ROW EXECUTE FUNCTION "ledger_entry_append_only"();

-- Balance updates rewrite a customer's row on every money operation. Free space on each page
-- lets PostgreSQL update in place (HOT), without new index entries, which also keeps other
-- customers' Serializable transactions from conflicting on shared index pages.
ALTER TABLE "customer" SET (fillfactor = 70);
