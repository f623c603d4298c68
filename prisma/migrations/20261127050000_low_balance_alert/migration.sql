-- Low-balance alerts: one email each time secondsRemaining falls below the customer's threshold,
-- re-armed when it rises above. Null threshold: off.
ALTER TABLE "credit_balance"
  ADD COLUMN "low_balance_threshold_seconds" INTEGER,
  ADD COLUMN "low_balance_alert_armed" BOOLEAN NOT NULL DEFAULT true,
  ADD CONSTRAINT "credit_balance_low_balance_threshold_non_negative" CHECK ("low_balance_threshold_seconds" >= 0);
