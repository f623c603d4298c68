// Every request the nemesis sends and what came back, as JSONL on disk and in memory for the
// checks, and the fault windows that each request is classified by.
import fs from "node:fs";
import type { FaultKind } from "./schedule";

export type Operation = "reserve" | "confirm" | "release" | "activate" | "webhook" | "probe";

export interface RequestRecord {
  seq: number;
  operation: Operation;
  instance: number;
  /** Milliseconds since the run started. */
  sentAtMs: number;
  /** Until the answer (or the network error, or the hang limit); null while in flight. */
  durationMs: number | null;
  /** HTTP status, or 0 without an answer. */
  status: number;
  /** The first GraphQL error code, `ok`, or the network failure (`ECONNREFUSED`, `hang`...). */
  code: string;
  retryAfter: string | null;
  /** For RESERVATION_SETTLED: the status the reservation has. */
  settledStatus?: string;
  /** Which fault was active when it was sent (`none`, `partition`, `partition healing`...). */
  window: string;
  /** The client had stopped waiting (its timeout) before this answer came. */
  late: boolean;
  attempt: number;
  /** What the request was about: idempotency key, reservation id, event id, license and fingerprint. */
  subject: Record<string, string | number>;
  /** What the answer said that the checks compare with the database. */
  answered?: Record<string, string | number | boolean | null>;
}

export interface FaultRecord {
  index: number;
  kind: FaultKind;
  instance: number | null;
  startedAtMs: number;
  endedAtMs: number | null;
  healedAtMs: number | null;
  /** Fault end to first success through every instance; instance kills: restart to ready. */
  healMs: number | null;
  detail: string;
}

export class RunLog {
  readonly requests: RequestRecord[] = [];
  readonly faults: FaultRecord[] = [];
  private readonly stream: fs.WriteStream;
  private sequence = 0;
  readonly startedAt = Date.now();

  constructor(readonly file: string) {
    this.stream = fs.createWriteStream(file);
    this.stream.on("error", (error) => process.stderr.write(`nemesis: request log ${file}: ${error.message}\n`));
  }

  nowMs(): number {
    return Date.now() - this.startedAt;
  }

  begin(operation: Operation, instance: number, attempt: number, subject: RequestRecord["subject"]): RequestRecord {
    const record: RequestRecord = {
      seq: (this.sequence += 1),
      operation,
      instance,
      sentAtMs: this.nowMs(),
      durationMs: null,
      status: 0,
      code: "in-flight",
      retryAfter: null,
      window: this.windowAt(this.nowMs(), instance),
      late: false,
      attempt,
      subject,
    };
    this.requests.push(record);
    return record;
  }

  /** Written once the answer is in: the JSONL holds finished requests, in the order they finished. */
  finish(record: RequestRecord): void {
    this.stream.write(`${JSON.stringify(record)}\n`);
  }

  /**
   * The window label of a moment for a request to `instance`: the fault active then, or the one
   * healing then, or none. An instance kill is told apart for the killed instance and the others.
   */
  windowAt(atMs: number, instance: number): string {
    for (let index = this.faults.length - 1; index >= 0; index -= 1) {
      const fault = this.faults[index]!;
      if (atMs < fault.startedAtMs) continue;
      const kind = fault.instance === null ? fault.kind : `${fault.kind} ${fault.instance === instance ? "(this instance)" : "(other instance)"}`;
      if (fault.endedAtMs === null || atMs < fault.endedAtMs) return kind;
      if (fault.healedAtMs === null || atMs < fault.healedAtMs) return `${kind} healing`;
      return "none";
    }
    return "none";
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.stream.end(() => resolve()));
  }
}
