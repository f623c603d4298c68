-- When the device's last offline license certificate expires: after deactivation, the device
-- keeps working offline until then, and staff can see when it stops.
ALTER TABLE "device" ADD COLUMN "certificate_expires_at" TIMESTAMPTZ(3);
