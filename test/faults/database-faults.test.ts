// The API (src/main.ts, a child process) on a PostgreSQL of the test's own that the test kills,
// cuts off and stops: the process survives every fault, answers 503 while the database is
// gone, heals by itself when it is back, leaks no connection, and loses no answered success.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { createDatabase } from "../../src/platform/database-admin";
import { ApiProcess, metricValue, type Answer } from "../support/api-process";
import { describeAnswer, MoneyLoad, type LoadTally } from "../support/money-load";
import { StandalonePostgres } from "../support/standalone-postgres";

const execFileAsync = promisify(execFile);
const root = path.resolve(__dirname, "..", "..");
const figuresFile = path.join(root, "test-artifacts", "database-faults.json");
const faultTestTimeoutMs = 180_000;
const customerCount = 6;
const recoveryTargetMs = 2000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let postgres: StandalonePostgres;
let api: ApiProcess;
let databaseUrl: string;
let sql: pg.Pool;
let customerIds: string[];
let deviceToken: string;
const figures: Record<string, unknown> = {};

const meQuery = "{ me { id balance { secondsRemaining } } }";

beforeAll(async () => {
  postgres = await StandalonePostgres.create();
  await postgres.start();
  databaseUrl = postgres.urlFor("splice");
  await createDatabase(databaseUrl);
  api = await ApiProcess.start(databaseUrl, { SWEEPER_INTERVAL_MS: "500", OUTBOX_POLL_INTERVAL_MS: "200", TX_MAX_WAIT_MS: "1000", TX_LOCK_TIMEOUT_MS: "1000" });
  sql = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  sql.on("error", () => undefined);
  const staff = api.staffToken();
  customerIds = [];
  for (let index = 0; index < customerCount; index += 1) {
    const created = await api.graphql(staff, `mutation($email: String!) { createCustomer(input: { email: $email, initialSeconds: 1000000 }) { id } }`, {
      email: `faults-${index}-${process.pid}@example.com`,
    });
    customerIds.push(created.body.data!.createCustomer.id);
  }
  const issued = await api.graphql(staff, `mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: customerIds[0] });
  const activated = await api.graphql(
    "",
    `mutation($key: String!) { activateLicense(input: { key: $key, device: { fingerprint: "fault-test-machine", name: "Fault rig" } }) { deviceToken } }`,
    { key: issued.body.data!.issueLicense.license.key },
  );
  deviceToken = activated.body.data!.activateLicense.deviceToken;
}, faultTestTimeoutMs);

afterAll(async () => {
  await api?.stop();
  await sql?.end();
  await postgres?.destroy();
  fs.mkdirSync(path.dirname(figuresFile), { recursive: true });
  fs.writeFileSync(figuresFile, `${JSON.stringify(figures, null, 2)}\n`);
});

const recoveryGiveUpMs = 30_000;

/** Milliseconds until a read succeeds, polling every 20 ms; fails past recoveryGiveUpMs. */
async function timeToFirstSuccess(): Promise<number> {
  const startedAt = Date.now();
  const token = api.customerToken(customerIds[0]!);
  for (;;) {
    if (Date.now() - startedAt > recoveryGiveUpMs) throw new Error(`no success ${recoveryGiveUpMs} ms after PostgreSQL came back; API alive: ${api.alive}\n${api.output}`);
    const answer = await api.graphql(token, meQuery).catch(() => undefined);
    if (answer?.status === 200 && !answer.body.errors) return Date.now() - startedAt;
    await sleep(20);
  }
}

async function expectEverySeenSuccessStored(tally: LoadTally): Promise<void> {
  const reserved = await sql.query<{ id: string }>("SELECT id FROM credit_reservation WHERE id = ANY($1::uuid[])", [[...tally.reserved]]);
  expect(reserved.rowCount).toBe(tally.reserved.size);
  const settled = await sql.query<{ id: string; status: string; charged_seconds: number | null }>(
    "SELECT id, status, charged_seconds FROM credit_reservation WHERE id = ANY($1::uuid[])",
    [tally.settled.map((seen) => seen.reservationId)],
  );
  const stored = new Map(settled.rows.map((row) => [row.id, row]));
  for (const seen of tally.settled) {
    expect({ id: seen.reservationId, status: stored.get(seen.reservationId)?.status }).toEqual({ id: seen.reservationId, status: seen.status });
    if (seen.status === "CONFIRMED") expect(stored.get(seen.reservationId)?.charged_seconds).toBe(seen.chargedSeconds);
  }
}

async function expectAuditPasses(): Promise<void> {
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", path.join(root, "scripts", "audit.ts")], {
    cwd: root,
    env: { ...process.env, NODE_ENV: "test", DATABASE_URL: databaseUrl },
  });
  expect(stdout).not.toMatch(/VIOLATION|violation/);
}

/** Only successes and clean 503s; never a 200 carrying an error, a 500, or no answer at all. */
function expectOnlyCleanAnswers(tally: LoadTally): void {
  const labels = [...tally.answers.keys()];
  expect(labels.filter((label) => label !== "200 ok" && label !== "503 SERVICE_UNAVAILABLE")).toEqual([]);
  expect(tally.unanswered).toBe(0);
}

it(
  "survives kill -9 of PostgreSQL under load, serves again by itself, and loses no answered success",
  async () => {
    const load = new MoneyLoad(api, customerIds, 2);
    load.start();
    await sleep(1500);
    await postgres.kill();
    await sleep(1000);
    await postgres.start();
    const recoveryMs = await timeToFirstSuccess();
    await sleep(1500);
    const tally = await load.stop();

    expect(api.alive).toBe(true);
    expect(recoveryMs).toBeLessThan(recoveryTargetMs);
    expect(tally.answers.get("200 ok") ?? 0).toBeGreaterThan(20);
    expectOnlyCleanAnswers(tally);
    await expectEverySeenSuccessStored(tally);
    await expectAuditPasses();
    figures.killNine = { recoveryMs, answers: Object.fromEntries(tally.answers), settledSeen: tally.settled.length };
  },
  faultTestTimeoutMs,
);

it(
  "terminating every API connection five times during load leaks nothing",
  async () => {
    const load = new MoneyLoad(api, customerIds, 2);
    load.start();
    let terminated = 0;
    for (let round = 0; round < 5; round += 1) {
      await sleep(400);
      const result = await sql.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
      );
      terminated += result.rowCount ?? 0;
    }
    await sleep(500);
    const tally = await load.stop();
    expect(api.alive).toBe(true);
    expect(terminated).toBeGreaterThan(5);
    expectOnlyCleanAnswers(tally);
    await expectEverySeenSuccessStored(tally);

    // Afterwards 200 requests in a row succeed: reserve and release, 100 times.
    const token = api.customerToken(customerIds[1]!);
    const failures: string[] = [];
    for (let cycle = 0; cycle < 100; cycle += 1) {
      const reserved = await api.graphql(token, `mutation { reserveCredits(input: { estimatedSeconds: 5, endpoint: "after" }) { reservation { id } } }`);
      if (reserved.status !== 200 || reserved.body.errors) failures.push(describeAnswer(reserved));
      const id = reserved.body.data?.reserveCredits?.reservation?.id;
      const released = await api.graphql(token, `mutation($id: ID!) { releaseReservation(input: { reservationId: $id }) { reservation { status } } }`, { id });
      if (released.status !== 200 || released.body.errors) failures.push(describeAnswer(released));
    }
    expect(failures).toEqual([]);

    // Every connection is back in its pool: none busy, none waited for. The sweeper and the
    // outbox worker borrow one now and then, so the count is polled until it settles.
    const poolState = async () => {
      const page = (await api.get("/metrics")).text;
      const read = (sample: string) => metricValue(page, sample)!;
      return {
        page,
        busy: read('splice_database_pool_connections{state="total"}') - read('splice_database_pool_connections{state="idle"}') +
          read('splice_database_lock_sessions{state="total"}') - read('splice_database_lock_sessions{state="idle"}'),
        waiting: read('splice_database_pool_connections{state="waiting_clients"}') + read('splice_database_lock_sessions{state="waiting_clients"}'),
      };
    };
    let state = await poolState();
    for (let attempt = 0; attempt < 50 && (state.busy > 0 || state.waiting > 0); attempt += 1) {
      await sleep(50);
      state = await poolState();
    }
    const leaked = state.busy;
    const metrics = state.page;
    expect(leaked).toBe(0);
    expect(state.waiting).toBe(0);
    expect(metricValue(metrics, "splice_database_connection_errors_total")).toBeGreaterThan(0);
    await expectAuditPasses();
    figures.terminatedConnections = { rounds: 5, terminated, answers: Object.fromEntries(tally.answers), leaked };
  },
  faultTestTimeoutMs,
);

it(
  "while PostgreSQL is down every operation answers 503 SERVICE_UNAVAILABLE with Retry-After, quickly; then it heals",
  async () => {
    const unavailableBefore = metricValue((await api.get("/metrics")).text, 'splice_unavailable_responses_total{route="/graphql"}') ?? 0;
    await postgres.stop();
    const customerToken = api.customerToken(customerIds[2]!);
    const staff = api.staffToken();
    const operations: [string, () => Promise<Answer>][] = [
      ["customer read", () => api.graphql(customerToken, meQuery)],
      ["reserve", () => api.graphql(customerToken, `mutation { reserveCredits(input: { estimatedSeconds: 5, endpoint: "down" }) { reservation { id } } }`)],
      ["device token read", () => api.graphql(deviceToken, meQuery)],
      ["staff search", () => api.graphql(staff, `{ searchCustomers(query: "faults") { edges { node { id } } } }`)],
      ["activation", () => api.graphql("", `mutation { activateLicense(input: { key: "SPLICE-ABCD-EFGH-JKMN" }) { customerId } }`)],
    ];
    const answers = new Map<string, number>();
    let slowestMs = 0;
    const outageEndsAt = Date.now() + 3000;
    while (Date.now() < outageEndsAt) {
      for (const [name, send] of operations) {
        const startedAt = Date.now();
        const answer = await send();
        slowestMs = Math.max(slowestMs, Date.now() - startedAt);
        const code = answer.body.errors?.[0]?.extensions;
        const label = `${answer.status} ${String(code?.code ?? "ok")} retry-after=${answer.retryAfter} retryAfterSeconds=${String(code?.retryAfterSeconds)} data=${answer.body.data === undefined ? "absent" : JSON.stringify(answer.body.data)}`;
        answers.set(label, (answers.get(label) ?? 0) + 1);
        expect({ name, label }).toEqual({ name, label: expect.stringMatching(/^503 SERVICE_UNAVAILABLE retry-after=2 retryAfterSeconds=2 data=(null|absent)$/) });
      }
    }
    expect((await api.get("/healthz")).status).toBe(200);
    expect((await api.get("/readyz")).status).toBe(503);
    const metrics = await api.get("/metrics");
    expect(metrics.status).toBe(200);
    const answered = [...answers.values()].reduce((sum, count) => sum + count, 0);
    expect(metricValue(metrics.text, 'splice_unavailable_responses_total{route="/graphql"}')! - unavailableBefore).toBe(answered);
    expect(slowestMs).toBeLessThan(2000);

    await postgres.start();
    const recoveryMs = await timeToFirstSuccess();
    expect(recoveryMs).toBeLessThan(recoveryTargetMs);
    expect(api.alive).toBe(true);

    // The outbox worker resumed: a license issued now is mailed.
    const issued = await api.graphql(staff, `mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { id } } }`, { id: customerIds[3] });
    const licenseId = issued.body.data!.issueLicense.license.id;
    let delivered = false;
    for (let attempt = 0; attempt < 100 && !delivered; attempt += 1) {
      const job = await sql.query("SELECT status FROM outbox_job WHERE payload->>'licenseId' = $1", [licenseId]);
      delivered = job.rows.some((row) => row.status === "DONE");
      if (!delivered) await sleep(100);
    }
    expect(delivered).toBe(true);
    figures.outage = { outageMs: 3000, answers: Object.fromEntries(answers), slowestAnswerMs: slowestMs, recoveryMs };
  },
  faultTestTimeoutMs,
);
