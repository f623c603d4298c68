-- Usage reads a customer's confirmed reservations by the time they were settled.
CREATE INDEX "credit_reservation_confirmed_by_settled_at" ON "credit_reservation" ("customer_id", "settled_at") WHERE "status" = 'CONFIRMED';
