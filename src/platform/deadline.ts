// A request's bound on waiting for the database.
//
// A statement whose connection stops answering (a network partition, a frozen server) would
// otherwise hold its request, and every request queued behind it for the same customer, until
// TCP gives up. Each HTTP request runs with a deadline (TX_TIMEOUT_MS from when its body has
// been read); every wait on the database inside it (a queue for the customer, a connection, a
// statement, a retry's backoff) ends by then, and the request is answered 503 with Retry-After.
// Commits are treated apart. A COMMIT is not sent at all once the deadline has passed (a 503
// then means nothing was written), and one sent close to it still waits TX_COMMIT_WAIT_MIN_MS
// for its answer (cut on a healthy server, its outcome would be unknown). After a commit the
// deadline moves to at least that much later, so that the reads that fill the answer are not
// cut on a server that answers (a 503 then would tell the client a committed write failed)
// while a frozen one still gets its 503 soon after. Work outside a request (the sweeper, the
// outbox, the audit) is bounded by the pool's statement timeouts alone.
import { AsyncLocalStorage } from "node:async_hooks";
import { ServiceUnavailableError } from "./failures";

interface Deadline {
  atMs: number;
}

const deadlines = new AsyncLocalStorage<Deadline>();

/** Runs `work` with a deadline `budgetMs` from now (a nested call keeps an earlier deadline). */
export function withDeadline<T>(budgetMs: number, work: () => T): T {
  const atMs = Date.now() + budgetMs;
  const outer = deadlines.getStore();
  if (outer && outer.atMs <= atMs) return work();
  return deadlines.run({ atMs }, work);
}

/** Milliseconds left before the current deadline; undefined outside a request. */
export function remainingMs(): number | undefined {
  const deadline = deadlines.getStore();
  return deadline === undefined ? undefined : deadline.atMs - Date.now();
}

/** The current request committed a write: its deadline is now at least `graceMs` away. */
export function extendAfterCommit(graceMs: number): void {
  const deadline = deadlines.getStore();
  if (deadline) deadline.atMs = Math.max(deadline.atMs, Date.now() + graceMs);
}

/** The database did not answer within the request's deadline: answered 503 like an outage. */
export class DeadlineExceededError extends ServiceUnavailableError {
  readonly code = "DeadlineExceeded";

  constructor(waitingFor: string) {
    super(`the request's deadline passed while waiting for ${waitingFor}`);
  }
}

/** `boundMs`, shortened to what the deadline leaves; throws when nothing is left. */
export function boundedByDeadline(boundMs: number, waitingFor: string): number {
  const left = remainingMs();
  if (left === undefined) return boundMs;
  if (left <= 0) throw new DeadlineExceededError(waitingFor);
  return Math.min(boundMs, Math.ceil(left));
}

/**
 * `boundMs`, shortened to what the deadline leaves, at least 1 ms: for a statement sent by code
 * that cannot take a thrown error (Prisma's adapter), which then times out at once instead.
 */
export function timeoutWithinDeadline(boundMs: number): number {
  const left = remainingMs();
  return left === undefined ? boundMs : Math.max(1, Math.min(boundMs, Math.ceil(left)));
}
