-- Usage reads a year of a customer's confirmed reservations: with the columns it sums in the
-- index, that is an index-only scan instead of a heap fetch per reservation (bench/usage.ts:
-- measured for a customer with a million reservations, in bench/README.md).
DROP INDEX "credit_reservation_confirmed_by_settled_at";
CREATE INDEX "credit_reservation_confirmed_by_settled_at" ON "credit_reservation" ("customer_id", "settled_at")
  INCLUDE ("endpoint", "charged_seconds", "unbilled_seconds") WHERE "status" = 'CONFIRMED';
