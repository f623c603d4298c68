-- When the license was last deactivated for a payment dispute: certificates are shorter for a
-- while after, and the license row (locked by every activation) says so without another read.
ALTER TABLE "license" ADD COLUMN "last_disputed_at" TIMESTAMPTZ(3);
UPDATE "license" l SET "last_disputed_at" = e."created_at"
FROM (SELECT "license_id", max("created_at") AS "created_at" FROM "license_event"
      WHERE "kind" = 'DEACTIVATED' AND "reason" = 'dispute' GROUP BY "license_id") e
WHERE e."license_id" = l."id";
