// Clients that reserve, then confirm or release, over and over, and remember every success
// they saw answered, so that a fault test can check each one against the database afterwards.
import crypto from "node:crypto";
import type { ApiProcess, Answer } from "./api-process";

export interface SeenSettlement {
  reservationId: string;
  customerId: string;
  status: "CONFIRMED" | "RELEASED";
  chargedSeconds: number;
}

export interface LoadTally {
  /** Answers by HTTP status and first error code (`200 ok`, `503 SERVICE_UNAVAILABLE`, ...). */
  answers: Map<string, number>;
  /** Reservations whose creation the client saw answered. */
  reserved: Set<string>;
  settled: SeenSettlement[];
  /** Requests that got no HTTP answer at all (connection refused or reset). */
  unanswered: number;
}

const reserveMutation = `mutation($key: String) { reserveCredits(input: { estimatedSeconds: 10, endpoint: "faults", idempotencyKey: $key }) { reservation { id } } }`;
const confirmMutation = `mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 7 }) { reservation { id chargedSeconds } } }`;
const releaseMutation = `mutation($id: ID!) { releaseReservation(input: { reservationId: $id }) { reservation { id } } }`;

export function describeAnswer(answer: Answer): string {
  const code = answer.body.errors?.[0]?.extensions?.code;
  return `${answer.status} ${code === undefined ? "ok" : String(code)}`;
}

export class MoneyLoad {
  readonly tally: LoadTally = { answers: new Map(), reserved: new Set(), settled: [], unanswered: 0 };
  private running = false;
  private loops: Promise<void>[] = [];
  private sequence = 0;
  /** Idempotency keys are per customer and forever: each load uses its own. */
  private readonly keyPrefix = crypto.randomUUID();

  constructor(
    private readonly api: ApiProcess,
    private readonly customerIds: string[],
    private readonly clientsPerCustomer: number,
  ) {}

  start(): void {
    this.running = true;
    this.loops = this.customerIds.flatMap((customerId) =>
      Array.from({ length: this.clientsPerCustomer }, () => this.loop(customerId, this.api.customerToken(customerId))),
    );
  }

  async stop(): Promise<LoadTally> {
    this.running = false;
    await Promise.all(this.loops);
    return this.tally;
  }

  private async loop(customerId: string, token: string): Promise<void> {
    while (this.running) {
      const reserved = await this.send(token, reserveMutation, { key: `${this.keyPrefix}-${(this.sequence += 1)}` });
      const reservationId = reserved?.body.data?.reserveCredits?.reservation?.id as string | undefined;
      if (!reservationId) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      this.tally.reserved.add(reservationId);
      const confirm = this.sequence % 2 === 0;
      const settled = await this.send(token, confirm ? confirmMutation : releaseMutation, { id: reservationId });
      if (settled?.status === 200 && !settled.body.errors) {
        this.tally.settled.push({ reservationId, customerId, status: confirm ? "CONFIRMED" : "RELEASED", chargedSeconds: confirm ? 7 : 0 });
      }
    }
  }

  private async send(token: string, query: string, variables: Record<string, unknown>): Promise<Answer | undefined> {
    try {
      const answer = await this.api.graphql(token, query, variables);
      const label = describeAnswer(answer);
      this.tally.answers.set(label, (this.tally.answers.get(label) ?? 0) + 1);
      return answer;
    } catch {
      this.tally.unanswered += 1;
      return undefined;
    }
  }
}
