
-- CreateEnum
CREATE TYPE "StripeEventStatus" AS ENUM ('RECEIVED', 'PROCESSED', 'IGNORED', 'FAILED');

-- CreateTable
CREATE TABLE "stripe_event" (
    "id" VARCHAR(255) NOT NULL,
    "type" VARCHAR(255) NOT NULL,
    "stripe_created" TIMESTAMPTZ(3) NOT NULL,
    "status" "StripeEventStatus" NOT NULL DEFAULT 'RECEIVED',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" VARCHAR(2000),
    "payload" JSONB NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "processed_at" TIMESTAMPTZ(3),

    CONSTRAINT "stripe_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payment_effect" (
    "key" VARCHAR(300) NOT NULL,
    "customer_id" UUID NOT NULL,
    "event_id" VARCHAR(255) NOT NULL,
    "granted_seconds" INTEGER NOT NULL,
    "stripe_payment_intent_id" VARCHAR(255),
    "stripe_charge_id" VARCHAR(255),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "payment_effect_pkey" PRIMARY KEY ("key")
);

-- CreateTable
CREATE TABLE "stripe_subscription" (
    "id" VARCHAR(255) NOT NULL,
    "customer_id" UUID NOT NULL,
    "status" VARCHAR(64) NOT NULL,
    "price_id" VARCHAR(255),
    "last_event_created" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "stripe_subscription_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "stripe_event_received_at_idx" ON "stripe_event"("received_at");

-- CreateIndex
CREATE INDEX "stripe_event_status_received_at_idx" ON "stripe_event"("status", "received_at");

-- CreateIndex
CREATE INDEX "payment_effect_stripe_payment_intent_id_idx" ON "payment_effect"("stripe_payment_intent_id");

-- CreateIndex
CREATE INDEX "payment_effect_stripe_charge_id_idx" ON "payment_effect"("stripe_charge_id");

-- CreateIndex
CREATE INDEX "payment_effect_customer_id_idx" ON "payment_effect"("customer_id");

-- CreateIndex
CREATE INDEX "stripe_subscription_customer_id_idx" ON "stripe_subscription"("customer_id");

-- AddForeignKey
ALTER TABLE "payment_effect" ADD CONSTRAINT "payment_effect_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "stripe_subscription" ADD CONSTRAINT "stripe_subscription_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;


-- Invariants the database guards itself.
ALTER TABLE "stripe_event"
  ADD CONSTRAINT "stripe_event_attempts_non_negative" CHECK ("attempts" >= 0),
  ADD CONSTRAINT "stripe_event_processed_at_matches_status" CHECK (("status" IN ('PROCESSED', 'IGNORED')) = ("processed_at" IS NOT NULL));
ALTER TABLE "payment_effect" ADD CONSTRAINT "payment_effect_granted_non_negative" CHECK ("granted_seconds" >= 0);
