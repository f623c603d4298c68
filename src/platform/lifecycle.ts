// What the process started, stopped in order. Each resource is registered as it comes up and
// closed in reverse order (the HTTP server first, the database server last), each close on its
// own so that one failure does not leave the rest running. A stop requested during startup
// happens as soon as startup is done; a second signal then, or a stop that overruns its time,
// ends the process at once after the synchronous last resorts (an immediate PostgreSQL stop).
import type { Logger } from "pino";

interface Owned {
  name: string;
  close: () => Promise<void> | void;
  /** Synchronous last resort when there is no time to close. */
  closeNow?: () => void;
}

export class Lifecycle {
  private readonly owned: Owned[] = [];
  private started = false;
  private requested: { reason: string; exitCode: number } | undefined;
  private stopping = false;

  constructor(
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  get isStopping(): boolean {
    return this.stopping;
  }

  own(name: string, close: () => Promise<void> | void, closeNow?: () => void): void {
    this.owned.push({ name, close, closeNow });
  }

  /** Startup is complete: a stop requested meanwhile happens now. */
  markStarted(): void {
    this.started = true;
    if (this.requested) void this.stop(this.requested.reason, this.requested.exitCode);
  }

  requestStop(reason: string, exitCode = 0): void {
    if (this.started) {
      void this.stop(reason, exitCode);
      return;
    }
    if (this.requested) {
      this.logger.warn({ reason }, "stop requested again while starting: exiting now");
      this.exitNow(1);
    }
    this.requested = { reason, exitCode };
    this.logger.info({ reason }, "stop requested while starting: stopping once started");
  }

  /** Closes everything registered, newest first, each on its own. */
  async closeAll(): Promise<void> {
    for (const owned of [...this.owned].reverse()) {
      try {
        await owned.close();
      } catch (error) {
        this.logger.error({ err: error, resource: owned.name }, "could not close cleanly");
      }
    }
    this.owned.length = 0;
  }

  private async stop(reason: string, exitCode: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.logger.info({ reason }, "shutting down");
    const deadline = setTimeout(() => {
      this.logger.error({ timeoutMs: this.timeoutMs }, "shutdown timed out; exiting");
      this.exitNow(1);
    }, this.timeoutMs);
    deadline.unref();
    await this.closeAll();
    this.logger.info("stopped");
    process.exit(exitCode);
  }

  private exitNow(exitCode: number): never {
    for (const owned of [...this.owned].reverse()) owned.closeNow?.();
    process.exit(exitCode);
  }
}
