// Settles expired reservations and grants in the background, and queues expiry notices.
// Expiry already takes effect on reads and in every balance transaction; the sweeper makes it
// permanent and visible in the ledger (EXPIRE, GRANT_EXPIRED).
import type { Logger } from "pino";
import { PeriodicTask } from "../../platform/periodic-task";
import type { CreditsService } from "./credits.service";

export function expirySweeper(credits: CreditsService, intervalMs: number, logger: Logger): PeriodicTask {
  return new PeriodicTask("expiry sweeper", intervalMs, async () => {
    const customers = await credits.sweepExpired();
    if (customers > 0) logger.info({ customers }, "expired reservations and grants settled");
    const notices = await credits.queueExpiryNotices();
    if (notices > 0) logger.info({ notices }, "grant expiry notices queued");
  }, logger);
}
