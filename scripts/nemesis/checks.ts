// The verdict: what the clients were told, compared with what the database holds, plus the
// service's own health at the end. Each check is strict and says with numbers why it failed.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { packHours, starterSeats, txTimeoutMs } from "./cluster";
import type { Fixtures } from "./fixtures";
import type { InstanceExit } from "./instances";
import type { RequestRecord, RunLog } from "./log";
import { healGiveUpMs } from "./faults";

const execFileAsync = promisify(execFile);
const root = path.resolve(__dirname, "..", "..");
/** Every request must be answered within the service's transaction lifetime plus this margin. */
export const latencyMarginMs = 1000;
export const latencyLimitMs = txTimeoutMs + latencyMarginMs;
/** The documented refusals each operation may answer, with their HTTP status. */
const expectedRefusals: Record<RequestRecord["operation"], Record<string, number>> = {
  reserve: { INSUFFICIENT_CREDITS: 402, TOO_MANY_REQUESTS: 429 },
  confirm: { RESERVATION_SETTLED: 200 },
  release: { RESERVATION_SETTLED: 200 },
  activate: { DEVICE_LIMIT_REACHED: 200, TOO_MANY_REQUESTS: 429 },
  webhook: { PROCESSED: 200, IGNORED: 200 },
  probe: {},
};
/** Failures to connect that a killed instance explains. */
const connectionFailures = new Set(["ECONNREFUSED", "ECONNRESET", "UND_ERR_SOCKET", "EPIPE", "UND_ERR_CLOSED"]);
const examplesShown = 5;
const metricsSettleMs = 10_000;
const metricsPollMs = 200;

export interface CheckResult {
  name: string;
  passed: boolean;
  numbers: Record<string, number | string>;
  /** A few offending cases, for the report. */
  examples: string[];
}

export interface CheckInput {
  log: RunLog;
  fixtures: Fixtures;
  directDatabaseUrl: string;
  baseUrls: string[];
  /** Per instance: when it was down (killed by the nemesis until ready again). */
  downIntervals: { instance: number; fromMs: number; toMs: number }[];
  unexpectedExits: InstanceExit[];
  racedReservations: ReadonlySet<string>;
}

const check = (name: string, failures: string[], numbers: CheckResult["numbers"]): CheckResult => ({
  name,
  passed: failures.length === 0,
  numbers: { ...numbers, violations: failures.length },
  examples: failures.slice(0, examplesShown),
});

const finished = (log: RunLog) => log.requests.filter((record) => record.durationMs !== null);
const isOk = (record: RequestRecord) => record.status === 200 && record.code === "ok";

export async function runChecks(input: CheckInput): Promise<CheckResult[]> {
  const sql = new pg.Pool({ connectionString: input.directDatabaseUrl, max: 2 });
  sql.on("error", () => undefined);
  try {
    const reservations = await reservationsOf(sql, input.fixtures.customers.map((customer) => customer.id));
    return [
      await moneyConserved(sql, input),
      answersMatchDatabase(input.log, reservations),
      idempotencyKeysMadeOneReservation(input.log, reservations),
      racesHadOneWinner(input.log, input.racedReservations),
      await seatsWithinLimit(sql, input),
      await paymentsAppliedOnce(sql, input),
      await auditClean(input.directDatabaseUrl),
      cleanAnswers(input),
      answeredInTime(input.log),
      noUnexpectedDeaths(input.unexpectedExits),
      await poolsIdle(input.baseUrls),
      everyFaultHealed(input.log),
    ];
  } finally {
    await sql.end();
  }
}

interface StoredReservation {
  id: string;
  customer_id: string;
  status: string;
  idempotency_key: string | null;
  reserved_seconds: number;
  actual_seconds: number | null;
  charged_seconds: number | null;
  /** ACTIVE past its expiry: the service presents it as EXPIRED until the sweeper settles it. */
  past_expiry: boolean;
}

async function reservationsOf(sql: pg.Pool, customerIds: string[]): Promise<Map<string, StoredReservation>> {
  const result = await sql.query<StoredReservation>(
    "SELECT id, customer_id, status, idempotency_key, reserved_seconds, actual_seconds, charged_seconds, expires_at <= now() AS past_expiry FROM credit_reservation WHERE customer_id = ANY($1::uuid[])",
    [customerIds],
  );
  return new Map(result.rows.map((row) => [row.id, row]));
}

/** Per customer: remaining + reserved + everything charged = starting balance + payments. */
async function moneyConserved(sql: pg.Pool, input: CheckInput): Promise<CheckResult> {
  const failures: string[] = [];
  let chargedSeconds = 0;
  let paidSeconds = 0;
  for (const customer of input.fixtures.customers) {
    const balance = await sql.query("SELECT seconds_remaining, seconds_reserved FROM credit_balance WHERE customer_id = $1", [customer.id]);
    const charged = await sql.query("SELECT coalesce(sum(charged_seconds), 0)::int AS seconds FROM credit_reservation WHERE customer_id = $1 AND status = 'CONFIRMED'", [customer.id]);
    const payments = input.fixtures.payments.filter((payment) => payment.customerId === customer.id).length;
    const expected = customer.initialSeconds + payments * packHours * 3600;
    const row = balance.rows[0] ?? { seconds_remaining: Number.NaN, seconds_reserved: Number.NaN };
    const actual = row.seconds_remaining + row.seconds_reserved + charged.rows[0].seconds;
    chargedSeconds += charged.rows[0].seconds;
    paidSeconds += payments * packHours * 3600;
    if (actual !== expected) {
      failures.push(`customer ${customer.id}: remaining ${row.seconds_remaining} + reserved ${row.seconds_reserved} + charged ${charged.rows[0].seconds} = ${actual}, expected ${expected} (start ${customer.initialSeconds} + ${payments} payments)`);
    }
  }
  return check("no money lost or double-counted", failures, { customers: input.fixtures.customers.length, chargedSeconds, paidSeconds });
}

/** Every answered reserve, confirm and release (also late ones) says what the database holds. */
function answersMatchDatabase(log: RunLog, reservations: Map<string, StoredReservation>): CheckResult {
  const failures: string[] = [];
  let compared = 0;
  for (const record of finished(log)) {
    if (record.operation !== "reserve" && record.operation !== "confirm" && record.operation !== "release") continue;
    const mismatch = mismatchOf(record, reservations);
    if (mismatch === undefined) continue;
    compared += 1;
    if (mismatch) failures.push(`#${record.seq} ${record.operation} ${record.code}: ${mismatch}`);
  }
  return check("every answered reserve/confirm/release matches the database", failures, { compared });
}

/** undefined: nothing to compare (no definite answer); "": it matches; otherwise the mismatch. */
function mismatchOf(record: RequestRecord, reservations: Map<string, StoredReservation>): string | undefined {
  if (record.operation === "reserve") {
    if (!isOk(record)) return undefined;
    const stored = reservations.get(String(record.answered?.reservationId));
    if (!stored) return `answered reservation ${record.answered?.reservationId} is not stored`;
    if (stored.idempotency_key !== record.subject.key || stored.reserved_seconds !== record.subject.estimatedSeconds || stored.customer_id !== record.subject.customerId) {
      return `stored ${JSON.stringify(stored)} differs from the request ${JSON.stringify(record.subject)}`;
    }
    return "";
  }
  const stored = reservations.get(String(record.subject.reservationId));
  if (isOk(record)) {
    const status = record.operation === "confirm" ? "CONFIRMED" : "RELEASED";
    if (stored?.status !== status) return `answered ${status}, stored ${stored?.status}`;
    if (record.operation === "confirm" && (stored.charged_seconds !== record.answered?.chargedSeconds || stored.actual_seconds !== record.subject.actualSeconds)) {
      return `answered charged ${record.answered?.chargedSeconds} of ${record.subject.actualSeconds}, stored ${stored.charged_seconds} of ${stored.actual_seconds}`;
    }
    return "";
  }
  if (record.code === "RESERVATION_SETTLED") {
    const presented = stored?.status === "ACTIVE" && stored.past_expiry ? "EXPIRED" : stored?.status;
    return presented === record.settledStatus ? "" : `answered settled as ${record.settledStatus}, stored ${stored?.status}`;
  }
  return undefined;
}

/** All answers for one key name one reservation; the database holds one per key, none without ours. */
function idempotencyKeysMadeOneReservation(log: RunLog, reservations: Map<string, StoredReservation>): CheckResult {
  const failures: string[] = [];
  const answeredIds = new Map<string, Set<string>>();
  const keysSent = new Set<string>();
  for (const record of log.requests) {
    if (record.operation !== "reserve") continue;
    keysSent.add(String(record.subject.key));
    if (!isOk(record)) continue;
    const ids = answeredIds.get(String(record.subject.key)) ?? new Set<string>();
    ids.add(String(record.answered?.reservationId));
    answeredIds.set(String(record.subject.key), ids);
  }
  for (const [key, ids] of answeredIds) if (ids.size !== 1) failures.push(`key ${key} answered ${ids.size} reservations: ${[...ids].join(", ")}`);
  const storedByKey = new Map<string, number>();
  for (const stored of reservations.values()) {
    const key = stored.idempotency_key ?? "(none)";
    storedByKey.set(key, (storedByKey.get(key) ?? 0) + 1);
    if (!keysSent.has(key)) failures.push(`reservation ${stored.id} with key ${key} was never requested`);
  }
  for (const [key, count] of storedByKey) if (count > 1) failures.push(`key ${key} made ${count} reservations`);
  return check("each idempotency key made one reservation", failures, { keysSent: keysSent.size, keysAnswered: answeredIds.size, reservationsStored: reservations.size });
}

function racesHadOneWinner(log: RunLog, raced: ReadonlySet<string>): CheckResult {
  const failures: string[] = [];
  const winners = { confirm: 0, release: 0, none: 0 };
  const successes = new Map<string, RequestRecord[]>();
  for (const record of log.requests) {
    if (!raced.has(String(record.subject.reservationId)) || !isOk(record)) continue;
    successes.set(String(record.subject.reservationId), [...(successes.get(String(record.subject.reservationId)) ?? []), record]);
  }
  for (const reservationId of raced) {
    const records = successes.get(reservationId) ?? [];
    const confirmed = records.some((record) => record.operation === "confirm");
    const released = records.some((record) => record.operation === "release");
    if (confirmed && released) failures.push(`reservation ${reservationId}: both confirm and release answered success`);
    winners[confirmed ? "confirm" : released ? "release" : "none"] += 1;
  }
  return check("confirm-versus-release races never both won", failures, { races: raced.size, confirmWon: winners.confirm, releaseWon: winners.release, noAnsweredWinner: winners.none });
}

async function seatsWithinLimit(sql: pg.Pool, input: CheckInput): Promise<CheckResult> {
  const failures: string[] = [];
  let seated = 0;
  for (const license of input.fixtures.licenses) {
    const stored = await sql.query("SELECT count(*)::int AS n FROM device d JOIN license l ON l.id = d.license_id WHERE l.key = $1 AND d.deactivated_at IS NULL", [license.key]);
    seated += stored.rows[0].n;
    if (stored.rows[0].n > starterSeats) failures.push(`license ${license.key}: ${stored.rows[0].n} seated devices, ${starterSeats} seats`);
    // No device is ever deactivated here: every machine answered success still holds its seat.
    const answered = new Set(finished(input.log).filter((record) => record.operation === "activate" && record.subject.licenseKey === license.key && isOk(record)).map((record) => record.subject.fingerprint));
    if (answered.size > starterSeats) failures.push(`license ${license.key}: ${answered.size} machines were answered a seat (${[...answered].join(", ")}), ${starterSeats} seats`);
  }
  return check("seats never over the license's limit", failures, { licenses: input.fixtures.licenses.length, seats: starterSeats, seatedDevices: seated });
}

async function paymentsAppliedOnce(sql: pg.Pool, input: CheckInput): Promise<CheckResult> {
  const failures: string[] = [];
  const eventIds = input.fixtures.payments.map((payment) => payment.id);
  const effects = await sql.query("SELECT event_id, count(*)::int AS n FROM payment_effect WHERE event_id = ANY($1) GROUP BY event_id", [eventIds]);
  const grants = await sql.query("SELECT count(*)::int AS n FROM ledger_entry WHERE kind = 'GRANT' AND actor = ANY($1)", [eventIds.map((id) => `stripe:${id}`)]);
  const events = await sql.query("SELECT status, count(*)::int AS n FROM stripe_event WHERE id = ANY($1) GROUP BY status", [eventIds]);
  const applied = effects.rows.reduce((sum, row) => sum + row.n, 0);
  for (const row of effects.rows) if (row.n !== 1) failures.push(`event ${row.event_id}: ${row.n} effects`);
  if (applied !== eventIds.length) failures.push(`${applied} payments applied, ${eventIds.length} distinct events delivered`);
  if (grants.rows[0].n !== eventIds.length) failures.push(`${grants.rows[0].n} grants by these events, ${eventIds.length} expected`);
  const statuses = Object.fromEntries(events.rows.map((row) => [row.status, row.n]));
  if ((statuses.PROCESSED ?? 0) !== eventIds.length) failures.push(`event statuses ${JSON.stringify(statuses)}`);
  const deliveries = input.log.requests.filter((record) => record.operation === "webhook").length;
  return check("every payment applied exactly once", failures, { distinctEvents: eventIds.length, deliveries, applied, grants: grants.rows[0].n });
}

async function auditClean(databaseUrl: string): Promise<CheckResult> {
  const run = await execFileAsync("npm", ["run", "--silent", "audit"], { cwd: root, env: { ...process.env, NODE_ENV: "test", DATABASE_URL: databaseUrl } }).then(
    (output) => ({ code: 0, output: output.stdout }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? -1, output: `${error.stdout ?? ""}${error.stderr ?? ""}` }),
  );
  const violations = run.output.split("\n").filter((line) => /violation|VIOLATION|failed/.test(line));
  return check("npm run audit clean", run.code === 0 ? [] : [`exit code ${run.code}`, ...violations], { exitCode: run.code });
}

/** What an answer is: `ok`, an expected refusal, a clean 503, a killed instance's refusal, or unexpected. */
export function classify(record: RequestRecord, down: CheckInput["downIntervals"]): "expected" | "unexpected" {
  if (record.status === 200 && record.code === "ok") return "expected";
  if (record.status === 503) return record.retryAfter !== null && (record.operation === "webhook" || record.code === "SERVICE_UNAVAILABLE") ? "expected" : "unexpected";
  if (record.status !== 0) return expectedRefusals[record.operation][record.code] === record.status ? "expected" : "unexpected";
  const endMs = record.sentAtMs + (record.durationMs ?? 0);
  const explained = down.some((interval) => interval.instance === record.instance && interval.fromMs <= endMs && interval.toMs >= record.sentAtMs);
  return connectionFailures.has(record.code) && explained ? "expected" : "unexpected";
}

function cleanAnswers(input: CheckInput): CheckResult {
  const records = finished(input.log);
  const unexpected = records.filter((record) => classify(record, input.downIntervals) === "unexpected");
  const byClass = new Map<string, number>();
  for (const record of unexpected) byClass.set(`${record.operation} ${record.status} ${record.code}`, (byClass.get(`${record.operation} ${record.status} ${record.code}`) ?? 0) + 1);
  const failures = unexpected.map((record) => `#${record.seq} ${record.operation} -> ${record.status} ${record.code} retry-after=${record.retryAfter} instance ${record.instance} in ${record.window}`);
  return check("every answer a 200, a documented refusal or a clean 503 with Retry-After", failures, {
    answers: records.length,
    unexpected: unexpected.length,
    ...Object.fromEntries([...byClass].map(([label, count]) => [label, count])),
  });
}

function answeredInTime(log: RunLog): CheckResult {
  const records = log.requests;
  const slow = records.filter((record) => record.durationMs === null || record.durationMs > latencyLimitMs || record.code === "hang");
  const failures = slow.map((record) => `#${record.seq} ${record.operation} sent at ${record.sentAtMs} ms in ${record.window}: ${record.durationMs ?? "no"} ms -> ${record.status} ${record.code}`);
  const maxMs = Math.max(0, ...records.map((record) => record.durationMs ?? 0));
  return check(`every request answered within TX_TIMEOUT_MS + ${latencyMarginMs} ms (${latencyLimitMs} ms)`, failures, { requests: records.length, slowerThanLimit: slow.length, maxMs });
}

function noUnexpectedDeaths(exits: InstanceExit[]): CheckResult {
  const failures = exits.map((exit) => {
    const lastLines = exit.outputTail.trim().split("\n").slice(-3).join(" | ");
    return `instance ${exit.instance} pid ${exit.pid} ${exit.wasReady ? "died" : "failed to start"} at ${exit.atMs} ms (code ${exit.code}, signal ${exit.signal}): ${lastLines.slice(0, 600)}`;
  });
  return check("no instance died except those the nemesis killed", failures, { died: exits.filter((exit) => exit.wasReady).length, failedStarts: exits.filter((exit) => !exit.wasReady).length });
}

/** Connections in use or waited for, per instance, from /metrics; polled until idle or the time is up. */
async function poolsIdle(baseUrls: string[]): Promise<CheckResult> {
  const failures: string[] = [];
  const numbers: CheckResult["numbers"] = {};
  for (const [index, baseUrl] of baseUrls.entries()) {
    const deadline = Date.now() + metricsSettleMs;
    let state = await poolState(baseUrl);
    while ((state.busy !== 0 || state.waiting !== 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, metricsPollMs));
      state = await poolState(baseUrl);
    }
    numbers[`instance ${index} busy`] = state.busy;
    numbers[`instance ${index} waiting`] = state.waiting;
    if (state.busy !== 0 || state.waiting !== 0) failures.push(`instance ${index}: ${state.busy} connections busy, ${state.waiting} clients waiting after ${metricsSettleMs} ms (${state.error ?? "from /metrics"})`);
  }
  return check("nothing leaks: pool gauges back to idle", failures, numbers);
}

async function poolState(baseUrl: string): Promise<{ busy: number; waiting: number; error?: string }> {
  try {
    const page = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const read = (sample: string) => {
      const line = page.split("\n").find((candidate) => candidate.startsWith(`${sample} `));
      return line === undefined ? Number.NaN : Number(line.slice(sample.length + 1));
    };
    return {
      busy:
        read('splice_database_pool_connections{state="total"}') - read('splice_database_pool_connections{state="idle"}') +
        read('splice_database_lock_sessions{state="total"}') - read('splice_database_lock_sessions{state="idle"}'),
      waiting: read('splice_database_pool_connections{state="waiting_clients"}') + read('splice_database_lock_sessions{state="waiting_clients"}'),
    };
  } catch (error) {
    return { busy: Number.NaN, waiting: Number.NaN, error: error instanceof Error ? error.message : String(error) };
  }
}

function everyFaultHealed(log: RunLog): CheckResult {
  const failures = log.faults.filter((fault) => fault.healMs === null).map((fault) => `fault #${fault.index} ${fault.kind} not healed within ${healGiveUpMs} ms (${fault.detail})`);
  return check("every fault healed", failures, { faults: log.faults.length });
}
