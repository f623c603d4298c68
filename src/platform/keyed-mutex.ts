// Runs work for the same key one at a time within this process. Serializable transactions
// already make concurrent writers to one customer safe across instances; queueing them here
// first turns most of those conflicts (abort, back off, retry) into a short wait. The wait is
// bounded by the request's deadline: when the work ahead is stuck on a database that stopped
// answering, a queued request is answered 503 in time instead of after everything ahead of it.
import { DeadlineExceededError, remainingMs } from "./deadline";

export class KeyedMutex {
  /** Per key: settles when everything queued so far for it is done (never rejects). */
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = previous ? previous.then(() => mine) : mine;
    this.tails.set(key, tail);
    // The key is forgotten once everything queued so far is done, not when this caller leaves:
    // one that gave up waiting leaves while the work ahead of it still runs.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    try {
      if (previous) await waitWithinDeadline(previous);
      return await work();
    } finally {
      // Whoever comes next still waits for `previous` too: giving up never lets it overtake.
      done();
    }
  }

  /** Keys with work queued or running, for tests. */
  get size(): number {
    return this.tails.size;
  }
}

async function waitWithinDeadline(turn: Promise<void>): Promise<void> {
  const leftMs = remainingMs();
  if (leftMs === undefined) return turn;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError("the same customer's earlier requests")), Math.max(0, leftMs));
  });
  try {
    await Promise.race([turn, expired]);
  } finally {
    clearTimeout(timer);
  }
}
