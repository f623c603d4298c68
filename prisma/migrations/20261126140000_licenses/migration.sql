
-- CreateEnum
CREATE TYPE "LicenseStatus" AS ENUM ('ACTIVE', 'DEACTIVATED');

-- CreateEnum
CREATE TYPE "LicenseEventKind" AS ENUM ('ISSUED', 'DELIVERY_QUEUED', 'ACTIVATED', 'DEVICE_ACTIVATED', 'DEVICE_DEACTIVATED', 'DEACTIVATED', 'REACTIVATED');

-- CreateEnum
CREATE TYPE "OutboxJobStatus" AS ENUM ('PENDING', 'DONE', 'DEAD');

-- CreateTable
CREATE TABLE "license" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "key" VARCHAR(21) NOT NULL,
    "customer_id" UUID NOT NULL,
    "status" "LicenseStatus" NOT NULL DEFAULT 'ACTIVE',
    "activated_at" TIMESTAMPTZ(3),
    "deactivated_at" TIMESTAMPTZ(3),
    "deactivation_reason" VARCHAR(1000),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "license_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "device" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "license_id" UUID NOT NULL,
    "fingerprint" VARCHAR(128) NOT NULL,
    "name" VARCHAR(100),
    "token_hash" CHAR(64),
    "activated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deactivated_at" TIMESTAMPTZ(3),

    CONSTRAINT "device_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "license_event" (
    "id" BIGSERIAL NOT NULL,
    "license_id" UUID NOT NULL,
    "kind" "LicenseEventKind" NOT NULL,
    "actor" VARCHAR(300) NOT NULL,
    "reason" VARCHAR(1000),
    "device_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "license_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "outbox_job" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "kind" VARCHAR(64) NOT NULL,
    "customer_id" UUID,
    "payload" JSONB NOT NULL,
    "status" "OutboxJobStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "leased_until" TIMESTAMPTZ(3),
    "last_error" VARCHAR(2000),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "done_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "outbox_attempt" (
    "id" BIGSERIAL NOT NULL,
    "job_id" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "succeeded" BOOLEAN NOT NULL,
    "error" VARCHAR(2000),
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "ended_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "outbox_attempt_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rate_limit_window" (
    "bucket" VARCHAR(300) NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "count" INTEGER NOT NULL,

    CONSTRAINT "rate_limit_window_pkey" PRIMARY KEY ("bucket")
);

-- CreateIndex
CREATE UNIQUE INDEX "license_key_key" ON "license"("key");

-- CreateIndex
CREATE UNIQUE INDEX "license_customer_id_key" ON "license"("customer_id");

-- CreateIndex
CREATE UNIQUE INDEX "device_token_hash_key" ON "device"("token_hash");

-- CreateIndex
CREATE INDEX "device_license_id_idx" ON "device"("license_id");

-- CreateIndex
CREATE INDEX "license_event_license_id_id_idx" ON "license_event"("license_id", "id");

-- CreateIndex
CREATE INDEX "outbox_job_customer_id_idx" ON "outbox_job"("customer_id");

-- CreateIndex
CREATE INDEX "outbox_attempt_job_id_idx" ON "outbox_attempt"("job_id");

-- AddForeignKey
ALTER TABLE "license" ADD CONSTRAINT "license_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "device" ADD CONSTRAINT "device_license_id_fkey" FOREIGN KEY ("license_id") REFERENCES "license"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "license_event" ADD CONSTRAINT "license_event_license_id_fkey" FOREIGN KEY ("license_id") REFERENCES "license"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "license_event" ADD CONSTRAINT "license_event_device_id_fkey" FOREIGN KEY ("device_id") REFERENCES "device"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "outbox_job" ADD CONSTRAINT "outbox_job_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "outbox_attempt" ADD CONSTRAINT "outbox_attempt_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "outbox_job"("id") ON DELETE RESTRICT ON UPDATE CASCADE;


-- Invariants the database guards itself.

ALTER TABLE "license"
  ADD CONSTRAINT "license_key_format" CHECK ("key" ~ '^SPLICE-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$'),
  ADD CONSTRAINT "license_deactivation_matches_status" CHECK (
    ("status" = 'ACTIVE' AND "deactivated_at" IS NULL AND "deactivation_reason" IS NULL)
    OR ("status" = 'DEACTIVATED' AND "deactivated_at" IS NOT NULL AND "deactivation_reason" IS NOT NULL)
  );

-- A device that gave its seat back holds no token.
ALTER TABLE "device"
  ADD CONSTRAINT "device_released_has_no_token" CHECK ("deactivated_at" IS NULL OR "token_hash" IS NULL);

-- One seat per fingerprint and license.
CREATE UNIQUE INDEX "device_license_fingerprint_seated_key" ON "device"("license_id", "fingerprint")
  WHERE "deactivated_at" IS NULL;

-- activated_at is set once and never changes.
CREATE FUNCTION "license_activated_at_is_final"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD."activated_at" IS NOT NULL AND NEW."activated_at" IS DISTINCT FROM OLD."activated_at" THEN
    RAISE EXCEPTION 'license % activated_at is final', OLD."id" USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER "license_activated_at_is_final" BEFORE UPDATE ON "license"
  FOR EACH ROW EXECUTE FUNCTION "license_activated_at_is_final"();

-- The audit trail is append-only.
CREATE FUNCTION "license_event_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'license events are append-only' USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER "license_event_append_only" BEFORE UPDATE OR DELETE ON "license_event"
  FOR EACH ROW EXECUTE FUNCTION "license_event_append_only"();

ALTER TABLE "outbox_job"
  ADD CONSTRAINT "outbox_job_attempts_non_negative" CHECK ("attempts" >= 0),
  ADD CONSTRAINT "outbox_job_done_at_matches_status" CHECK (("status" = 'DONE') = ("done_at" IS NOT NULL));

-- Workers claim due jobs in order.
CREATE INDEX "outbox_job_pending_due_idx" ON "outbox_job"("next_attempt_at") WHERE "status" = 'PENDING';

ALTER TABLE "rate_limit_window" ADD CONSTRAINT "rate_limit_window_count_positive" CHECK ("count" > 0);
