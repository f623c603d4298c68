// Settles expired reservations in the background. Expiry already takes effect on reads and
// in every balance transaction; the sweeper makes it permanent and visible in the ledger.
import type { Logger } from "pino";
import type { CreditsService } from "./credits.service";

export class ExpirySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(
    private readonly credits: CreditsService,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stops scheduling and waits for a sweep under way to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweepOnce().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.intervalMs);
  }

  private async sweepOnce(): Promise<void> {
    try {
      const customers = await this.credits.sweepExpired();
      if (customers > 0) this.logger.info({ customers }, "expired reservations settled");
    } catch (error) {
      this.logger.error({ err: error }, "expiry sweep failed");
    }
  }
}
