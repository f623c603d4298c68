// The design's floor: the smallest server of the same design as the service, for the bench to
// measure the service against in the same sitting. It shares no code with src/: node:http,
// graphql-js (parse and validation cached per query text), pg; per mutation BEGIN ISOLATION
// LEVEL SERIALIZABLE, one prepared statement (check, balance, reservation, ledger), COMMIT,
// the whole transaction retried on 40001/40P01; one mutation at a time per customer in this
// process; sessions that plan index scans only; HS256 bearer tokens verified once each. It
// does none of the service's other work (grants and their expiry, limits, idempotency,
// metrics, logs), which is what the comparison is meant to show the price of.
//
// Run by bench/run.ts as its own process: FLOOR_DATABASE_URL, FLOOR_PORT, FLOOR_JWT_SECRET.
import crypto from "node:crypto";
import http from "node:http";
import { buildSchema, execute, parse, validate, type DocumentNode } from "graphql";
import pg from "pg";

const poolSize = 10;
const attemptsMax = 10;
const bodyMaxBytes = 65_536;
const reservationTtlSeconds = 6 * 3600;
const retryable = new Set(["40001", "40P01"]);
/** Transactions tried again after a conflict: GET /counters, for the bench's retries per cycle. */
const counters = { conflicts: 0 };

const schema = buildSchema(`
  type Query { ok: Boolean }
  input ReserveCreditsInput { estimatedSeconds: Int!, endpoint: String!, idempotencyKey: String }
  input ConfirmReservationInput { reservationId: ID!, actualSeconds: Int! }
  type Reservation { id: ID! }
  type Balance { secondsRemaining: Int! }
  type ReservePayload { reservation: Reservation!, balance: Balance! }
  type ConfirmPayload { reservation: Reservation!, balance: Balance! }
  type Mutation {
    reserveCredits(input: ReserveCreditsInput!): ReservePayload!
    confirmReservation(input: ConfirmReservationInput!): ConfirmPayload!
  }
`);

// Reserve: hold the seconds if there are enough, write the reservation and one ledger entry.
const reserveStatement = {
  name: "floor_reserve",
  text: `
    WITH held AS (
      UPDATE credit_balance SET seconds_remaining = seconds_remaining - $2, seconds_reserved = seconds_reserved + $2
      WHERE customer_id = $1 AND seconds_remaining >= $2
      RETURNING customer_id, seconds_remaining),
    reservation AS (
      INSERT INTO credit_reservation (customer_id, endpoint, reserved_seconds, status, actor, expires_at)
      SELECT customer_id, $3, $2, 'ACTIVE'::"ReservationStatus", 'floor', now() + make_interval(secs => $4) FROM held
      RETURNING id, customer_id),
    ledger AS (
      INSERT INTO ledger_entry (customer_id, kind, delta_seconds, balance_after, reservation_id, actor)
      SELECT r.customer_id, 'RESERVE'::"LedgerEntryKind", -$2::int, h.seconds_remaining, r.id, 'floor' FROM reservation r JOIN held h USING (customer_id))
    SELECT r.id, h.seconds_remaining FROM reservation r JOIN held h USING (customer_id)`,
};

// Confirm: settle the ACTIVE reservation, give back what it held beyond the actual seconds
// (charging at most what it held), and write one ledger entry.
const confirmStatement = {
  name: "floor_confirm",
  text: `
    WITH settled AS (
      UPDATE credit_reservation SET status = 'CONFIRMED', actual_seconds = $3, charged_seconds = LEAST($3, reserved_seconds),
        unbilled_seconds = GREATEST(0, $3 - reserved_seconds), settled_at = now()
      WHERE id = $2 AND customer_id = $1 AND status = 'ACTIVE'
      RETURNING id, customer_id, reserved_seconds, charged_seconds),
    balance AS (
      UPDATE credit_balance b SET seconds_remaining = b.seconds_remaining + s.reserved_seconds - s.charged_seconds,
        seconds_reserved = b.seconds_reserved - s.reserved_seconds
      FROM settled s WHERE b.customer_id = s.customer_id
      RETURNING b.customer_id, b.seconds_remaining, s.reserved_seconds - s.charged_seconds AS refunded),
    ledger AS (
      INSERT INTO ledger_entry (customer_id, kind, delta_seconds, balance_after, reservation_id, actor)
      SELECT b.customer_id, 'CONFIRM'::"LedgerEntryKind", b.refunded, b.seconds_remaining, $2, 'floor' FROM balance b)
    SELECT s.id, b.seconds_remaining FROM settled s JOIN balance b USING (customer_id)`,
};

class Refusal extends Error {}

const pool = new pg.Pool({
  connectionString: process.env.FLOOR_DATABASE_URL,
  max: poolSize,
  options: "-c enable_seqscan=off -c enable_bitmapscan=off",
});
pool.on("error", () => undefined);
pool.on("connect", (client) => client.on("error", () => undefined));

/** One Serializable transaction running one prepared statement, retried whole on conflict. */
async function transact(statement: { name: string; text: string }, values: unknown[]): Promise<{ id: string; seconds_remaining: number }> {
  for (let attempt = 1; ; attempt += 1) {
    const client = await pool.connect();
    try {
      await client.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
      const result = await client.query({ ...statement, values });
      await client.query("COMMIT");
      client.release();
      const row = result.rows[0] as { id: string; seconds_remaining: number } | undefined;
      if (!row) throw new Refusal("refused: not enough seconds, or no such ACTIVE reservation");
      return row;
    } catch (error) {
      if (error instanceof Refusal) throw error;
      await client.query("ROLLBACK").catch(() => undefined);
      client.release();
      const code = (error as { code?: string }).code;
      if (!code || !retryable.has(code) || attempt >= attemptsMax) throw error;
      counters.conflicts += 1;
    }
  }
}

const queues = new Map<string, Promise<unknown>>();

/** One mutation at a time per customer in this process. */
function serially<T>(customerId: string, work: () => Promise<T>): Promise<T> {
  const previous = queues.get(customerId) ?? Promise.resolve();
  const current = previous.then(work, work);
  const tail = current.then(() => undefined, () => undefined);
  queues.set(customerId, tail);
  void tail.then(() => queues.get(customerId) === tail && queues.delete(customerId));
  return current;
}

const rootValue = {
  reserveCredits: async ({ input }: { input: { estimatedSeconds: number; endpoint: string } }, context: { customerId: string }) => {
    const row = await serially(context.customerId, () => transact(reserveStatement, [context.customerId, input.estimatedSeconds, input.endpoint, reservationTtlSeconds]));
    return { reservation: { id: row.id }, balance: { secondsRemaining: row.seconds_remaining } };
  },
  confirmReservation: async ({ input }: { input: { reservationId: string; actualSeconds: number } }, context: { customerId: string }) => {
    const row = await serially(context.customerId, () => transact(confirmStatement, [context.customerId, input.reservationId, input.actualSeconds]));
    return { reservation: { id: row.id }, balance: { secondsRemaining: row.seconds_remaining } };
  },
};

const documents = new Map<string, DocumentNode>();

function documentOf(query: string): DocumentNode {
  let document = documents.get(query);
  if (!document) {
    document = parse(query);
    const errors = validate(schema, document);
    if (errors.length > 0) throw new Refusal(errors[0]!.message);
    documents.set(query, document);
  }
  return document;
}

const verifiedTokens = new Map<string, string>();
const secret = process.env.FLOOR_JWT_SECRET ?? "";

/** The customer a bearer token names, its HS256 signature checked once per token. */
function customerOf(authorization: string | undefined): string | undefined {
  const token = authorization?.startsWith("Bearer ") ? authorization.slice(7) : undefined;
  if (!token) return undefined;
  const known = verifiedTokens.get(token);
  if (known) return known;
  const [header, claims, signature] = token.split(".");
  if (!header || !claims || !signature) return undefined;
  const expected = crypto.createHmac("sha256", secret).update(`${header}.${claims}`).digest("base64url");
  if (expected.length !== signature.length || !crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) return undefined;
  const subject = (JSON.parse(Buffer.from(claims, "base64url").toString()) as { sub?: string }).sub;
  if (subject) verifiedTokens.set(token, subject);
  return subject;
}

async function answer(body: string, authorization: string | undefined): Promise<{ status: number; payload: unknown }> {
  const customerId = customerOf(authorization);
  if (!customerId) return { status: 401, payload: { errors: [{ message: "unauthenticated" }] } };
  const request = JSON.parse(body) as { query: string; variables?: Record<string, unknown> };
  const result = await execute({ schema, document: documentOf(request.query), rootValue, contextValue: { customerId }, variableValues: request.variables });
  return { status: 200, payload: result };
}

const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  let size = 0;
  request.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= bodyMaxBytes) chunks.push(chunk);
  });
  request.on("end", () => {
    const reply = (status: number, payload: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(payload));
    };
    if (request.url === "/readyz") return reply(200, { status: "ready" });
    if (request.url === "/counters") return reply(200, counters);
    if (size > bodyMaxBytes) return reply(413, { errors: [{ message: "body too large" }] });
    answer(Buffer.concat(chunks).toString(), request.headers.authorization).then(
      ({ status, payload }) => reply(status, payload),
      (error: unknown) => reply(error instanceof Refusal ? 400 : 503, { errors: [{ message: (error as Error).message }] }),
    );
  });
});

server.listen(Number(process.env.FLOOR_PORT), "127.0.0.1");
const stop = () => server.close(() => void pool.end().then(() => process.exit(0)));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
