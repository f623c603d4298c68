// Runs the fault schedule against the cluster, one fault at a time, and measures each heal:
// from the fault's end to the first success through every instance (for an instance kill, from
// its restart to /readyz). Every fault is undone in `finally`, also when the run is cut short.
import { graphqlCode, type LoadClient } from "./client";
import type { Cluster } from "./cluster";
import type { FaultRecord, RunLog } from "./log";
import { sleep } from "./postgres";
import type { PlannedFault } from "./schedule";

/** A fault not healed after this is reported unhealed and the schedule moves on. */
export const healGiveUpMs = 60_000;
const probePauseMs = 100;
const probeQuery = "{ me { id } }";

export class FaultInjector {
  private stoppedPids: number[] = [];

  constructor(
    private readonly cluster: Cluster,
    private readonly log: RunLog,
    private readonly client: LoadClient,
    private readonly probeToken: string,
  ) {}

  /** Faults in order until the deadline (a fault is only started if its gap ends before it). */
  async run(schedule: PlannedFault[], deadlineMs: number, cancelled: () => boolean): Promise<void> {
    for (const fault of schedule) {
      if (cancelled() || this.log.nowMs() + fault.gapBeforeMs >= deadlineMs) return;
      await sleep(fault.gapBeforeMs);
      if (cancelled()) return;
      await this.inject(fault, cancelled);
    }
  }

  /** Undoes whatever may still be in force: a partition, a stopped server. */
  undoAll(): void {
    this.cluster.proxy.heal();
    this.cluster.postgres.continueAll(this.stoppedPids);
    this.stoppedPids = [];
  }

  private async inject(fault: PlannedFault, cancelled: () => boolean): Promise<void> {
    const record: FaultRecord = {
      index: fault.index,
      kind: fault.kind,
      instance: fault.kind === "instance-kill" ? fault.instance : null,
      startedAtMs: this.log.nowMs(),
      endedAtMs: null,
      healedAtMs: null,
      healMs: null,
      detail: "",
    };
    this.log.faults.push(record);
    try {
      record.detail = await this.apply(fault);
    } catch (error) {
      record.detail = `injection failed: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      this.undoAll();
    }
    record.endedAtMs = this.log.nowMs();
    const healedAtMs = fault.kind === "instance-kill" ? await this.restartInstance(fault.instance, cancelled) : await this.firstSuccessEverywhere(cancelled);
    record.healedAtMs = healedAtMs;
    record.healMs = healedAtMs === null ? null : healedAtMs - record.endedAtMs;
  }

  /** The fault itself, until its end; returns what was done, for the report. */
  private async apply(fault: PlannedFault): Promise<string> {
    const { postgres, proxy, instances } = this.cluster;
    switch (fault.kind) {
      case "instance-kill": {
        const pid = instances[fault.instance]!.pid;
        await instances[fault.instance]!.kill();
        await sleep(fault.durationMs);
        return `kill -9 of instance ${fault.instance} (pid ${pid}), restarted after ${fault.durationMs} ms`;
      }
      case "postmaster-kill": {
        const pid = postgres.killPostmaster();
        await sleep(fault.durationMs);
        await postgres.start();
        return `kill -9 of the postmaster (pid ${pid}), started again after ${fault.durationMs} ms`;
      }
      case "pg-sigstop": {
        this.stoppedPids = postgres.stopAll();
        await sleep(fault.durationMs);
        return `SIGSTOP of ${this.stoppedPids.length} PostgreSQL processes for ${fault.durationMs} ms`;
      }
      case "pg-restart":
        await postgres.restartFast();
        return "pg_ctl restart -m fast";
      case "backend-terminate":
        return `pg_terminate_backend of ${await postgres.terminateBackends()} sessions`;
      case "partition":
        proxy.partition();
        await sleep(fault.durationMs);
        return `proxy stopped forwarding for ${fault.durationMs} ms`;
    }
  }

  /** Restarts a killed instance; the moment it is ready (a failed start is retried by its supervisor). */
  private async restartInstance(index: number, cancelled: () => boolean): Promise<number | null> {
    const instance = this.cluster.instances[index]!;
    const restartedAtMs = this.log.nowMs();
    await instance.start().catch(() => undefined);
    while (!instance.ready) {
      if (cancelled() || this.log.nowMs() - restartedAtMs > healGiveUpMs) return null;
      await sleep(probePauseMs);
    }
    return this.log.nowMs();
  }

  /** The moment every instance has answered a read successfully, each probed until it does. */
  private async firstSuccessEverywhere(cancelled: () => boolean): Promise<number | null> {
    const endedAtMs = this.log.nowMs();
    const healedAt = await Promise.all(
      this.cluster.instances.map(async (instance) => {
        for (let attempt = 1; ; attempt += 1) {
          if (cancelled() || this.log.nowMs() - endedAtMs > healGiveUpMs) return null;
          const sent = await this.client.send({
            operation: "probe",
            instance: instance.index,
            attempt,
            subject: {},
            path: "/graphql",
            headers: { "content-type": "application/json", authorization: `Bearer ${this.probeToken}` },
            body: JSON.stringify({ query: probeQuery }),
            codeOf: graphqlCode,
          });
          if (sent.kind === "answer" && sent.status === 200 && sent.record.code === "ok") return this.log.nowMs();
          await sleep(probePauseMs);
        }
      }),
    );
    return healedAt.some((at) => at === null) ? null : Math.max(...(healedAt as number[]));
  }
}
