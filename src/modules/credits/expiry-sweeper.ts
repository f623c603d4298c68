// Settles expired reservations and grants in the background, and queues expiry notices.
// Expiry already takes effect on reads and in every balance transaction; the sweeper makes it
// permanent and visible in the ledger (EXPIRE, GRANT_EXPIRED).
import type { Logger } from "pino";
import { PeriodicTask } from "../../platform/periodic-task";
import type { CreditsService } from "./credits.service";

export function expirySweeper(credits: CreditsService, intervalMs: number, logger: Logger): PeriodicTask {
  return new PeriodicTask("expiry sweeper", intervalMs, async () => {
    // Each step on its own: expiry notices are queued even in a round whose expiry failed.
    const [settled, queued] = await Promise.allSettled([credits.sweepExpired(), credits.queueExpiryNotices()]);
    if (settled.status === "fulfilled" && settled.value > 0) logger.info({ customers: settled.value }, "expired reservations and grants settled");
    if (queued.status === "fulfilled" && queued.value > 0) logger.info({ notices: queued.value }, "grant expiry notices queued");
    const failed = [settled, queued].find((step) => step.status === "rejected");
    if (failed) throw failed.reason;
  }, logger);
}
