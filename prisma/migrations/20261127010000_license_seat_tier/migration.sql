-- A license's seats follow a tier the licenses module keeps on the license itself, set from the
-- owner's tier when the license is issued and whenever the tier changes (in the same
-- transaction), so that an activation reads no other module's table.
ALTER TABLE "license" ADD COLUMN "tier" "Tier";
UPDATE "license" l SET "tier" = c."tier" FROM "customer" c WHERE c."id" = l."customer_id";
ALTER TABLE "license" ALTER COLUMN "tier" SET NOT NULL;
