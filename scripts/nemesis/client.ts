// One HTTP request of the load, as a client behind a load balancer makes it: it stops waiting
// after CLIENT_TIMEOUT_MS and retries, but the request it gave up on is kept running (up to
// HANG_LIMIT_MS) so that its answer, however late, is logged and checked too.
import type { Operation, RequestRecord, RunLog } from "./log";

/** A client gives up waiting after this and retries (the first request keeps running). */
export const clientTimeoutMs = 4000;
/** A request still unanswered after this is aborted and counted as a hang. */
export const hangLimitMs = 30_000;

export interface HttpAnswer {
  kind: "answer";
  status: number;
  retryAfter: string | null;
  body: any;
  record: RequestRecord;
}
export type Sent = HttpAnswer | { kind: "timeout"; record: RequestRecord; settled: Promise<void> } | { kind: "network"; code: string; record: RequestRecord };

export interface Target {
  baseUrl(instance: number): string;
}

export class LoadClient {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly log: RunLog,
    private readonly target: Target,
  ) {}

  async send(request: {
    operation: Operation;
    instance: number;
    attempt: number;
    subject: RequestRecord["subject"];
    path: string;
    headers: Record<string, string>;
    body: string;
    /** The code an answer is classified by: the GraphQL error code or the webhook's status. */
    codeOf: (status: number, body: any) => string;
    /** What of a successful answer the checks need, also from an answer that came late. */
    extract?: (body: any) => RequestRecord["answered"];
  }): Promise<Sent> {
    const record = this.log.begin(request.operation, request.instance, request.attempt, request.subject);
    const startedAt = Date.now();
    const abort = AbortSignal.timeout(hangLimitMs);
    const finished = this.exchange(request, abort).then(
      (answer) => {
        Object.assign(record, { durationMs: Date.now() - startedAt, status: answer.status, retryAfter: answer.retryAfter, code: request.codeOf(answer.status, answer.body) });
        const settledStatus = answer.body?.errors?.[0]?.extensions?.status;
        if (typeof settledStatus === "string") record.settledStatus = settledStatus;
        if (record.code === "ok" || answer.status === 200) record.answered = request.extract?.(answer.body);
        return { kind: "answer" as const, ...answer, record };
      },
      (error: unknown) => {
        Object.assign(record, { durationMs: Date.now() - startedAt, status: 0, code: networkCode(error) });
        return { kind: "network" as const, code: record.code, record };
      },
    );
    const settled = finished.then(() => this.log.finish(record));
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), clientTimeoutMs)));
    const first = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    if (first !== "timeout") return first;
    record.late = true;
    return { kind: "timeout", record, settled };
  }

  /** Waits for every request still running (each ends by HANG_LIMIT_MS at the latest). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async exchange(request: { instance: number; path: string; headers: Record<string, string>; body: string }, signal: AbortSignal) {
    const response = await fetch(`${this.target.baseUrl(request.instance)}${request.path}`, { method: "POST", headers: request.headers, body: request.body, signal });
    const text = await response.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = { unparsed: text.slice(0, 200) };
    }
    return { status: response.status, retryAfter: response.headers.get("retry-after"), body };
  }
}

/** `ECONNREFUSED`, `ECONNRESET`, `UND_ERR_SOCKET`..., or `hang` for the hang limit. */
function networkCode(error: unknown): string {
  const failure = error as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  if (failure.name === "TimeoutError" || failure.name === "AbortError") return "hang";
  return failure.cause?.code ?? failure.code ?? failure.cause?.name ?? failure.name ?? "network-error";
}

/** The first GraphQL error's code, or `ok`. */
export function graphqlCode(status: number, body: any): string {
  const code = body?.errors?.[0]?.extensions?.code;
  if (code !== undefined) return String(code);
  return status === 200 && body?.data ? "ok" : `no-data`;
}

/** A webhook's answer: the recorded status (PROCESSED, IGNORED, FAILED) or the error. */
export function webhookCode(_status: number, body: any): string {
  if (typeof body?.status === "string") return body.status;
  const code = body?.errors?.[0]?.extensions?.code ?? body?.error;
  return code === undefined ? "no-body" : String(code);
}
