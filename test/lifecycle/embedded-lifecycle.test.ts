// The real entry point on the default embedded PostgreSQL, started the way a process manager
// and `npm start` start it: signals with requests in flight, SIGTERM to npm, kill -9 and a
// restart, a second instance on the same data directory.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../../src/config";
import { mintToken } from "../../src/platform/auth";
import { freePort } from "../support/test-database";
import { serverArguments } from "../../scripts/server-command";

const root = path.resolve(__dirname, "..", "..");
const lifecycleTimeoutMs = 120_000;
const readyTimeoutMs = 60_000;
const auth = loadConfig({ NODE_ENV: "test" }).auth;
const staffToken = mintToken(auth, "staff", "lifecycle", 3600);

let dataDirectory: string;
let postgresPort: number;

beforeAll(async () => {
  dataDirectory = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "splice-lifecycle-")), "postgres");
  postgresPort = await freePort();
});

afterAll(() => {
  fs.rmSync(path.dirname(dataDirectory), { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

/** `node dist/src/main.js` (what `npm start` execs), or `npm start` itself. */
async function start(how: "node" | "npm", waitUntilReady = true): Promise<Started> {
  const port = await freePort();
  const environment: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: "test", PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", EMBEDDED_PG_DIR: dataDirectory, EMBEDDED_PG_PORT: String(postgresPort) };
  delete environment.DATABASE_URL;
  const child =
    how === "node"
      ? spawn(process.execPath, serverArguments(), { cwd: root, env: environment })
      : spawn("npm", ["start", "--silent"], { cwd: root, env: environment });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const started = { child, port, output: () => output, exited };
  if (!waitUntilReady) return started;
  const deadline = Date.now() + readyTimeoutMs;
  while (!(await fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return started;
}

function post(port: number, token: string, query: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
}

function postmasterPid(): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(dataDirectory, "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return undefined;
  }
}

const ownerPid = () => Number(fs.readFileSync(`${dataDirectory}.owner`, "utf8"));

/** Waits until every given process is gone (at most 15 s). */
async function waitUntilGone(...pids: (number | undefined)[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function storedBalance(customerId: string): Promise<{ seconds_remaining: number; seconds_reserved: number }> {
  const running = await start("node");
  try {
    const sql = new pg.Client({ connectionString: `postgresql://splice:splice@127.0.0.1:${postgresPort}/splice` });
    sql.on("error", () => undefined);
    await sql.connect();
    const stored = await sql.query("SELECT seconds_remaining, seconds_reserved FROM credit_balance WHERE customer_id = $1", [customerId]);
    await sql.end();
    return stored.rows[0];
  } finally {
    running.child.kill("SIGTERM");
    expect(await running.exited).toBe(0);
  }
}

/** Sends a signal with 20 reservations in flight; every accepted one must be answered and stored. */
async function drainsOn(signal: NodeJS.Signals): Promise<void> {
  const server = await start("node");
  const created: any = await (await post(server.port, staffToken, `mutation { createCustomer(input: { email: "${signal}-${process.pid}-${Date.now()}@example.com", initialSeconds: 10000 }) { id } }`)).json();
  const customerId = created.data.createCustomer.id;
  const customerToken = mintToken(auth, "customer", customerId, 600);
  const pid = postmasterPid();
  const inFlight = Array.from({ length: 20 }, () => post(server.port, customerToken, `mutation { reserveCredits(input: { estimatedSeconds: 10, endpoint: "bye" }) { replayed } }`));
  await new Promise((resolve) => setTimeout(resolve, 5));
  server.child.kill(signal);
  const statuses = await Promise.all(inFlight.map((request) => request.then((response) => response.status, () => "refused")));
  expect(await server.exited).toBe(0);
  expect(server.output()).toContain('"msg":"stopped"');
  expect(server.output()).not.toMatch(/Unhandled|terminating connection/);
  expect(statuses.filter((status) => status !== 200 && status !== "refused")).toEqual([]);
  const answered = statuses.filter((status) => status === 200).length;
  expect(answered).toBeGreaterThan(0);
  // PostgreSQL was stopped last, and is not left running.
  expect(isAlive(pid)).toBe(false);
  expect(await storedBalance(customerId)).toEqual({ seconds_remaining: 10000 - answered * 10, seconds_reserved: answered * 10 });
}

it("SIGINT with requests in flight: each is answered, PostgreSQL stops last, exit 0", () => drainsOn("SIGINT"), lifecycleTimeoutMs);

it("SIGTERM with requests in flight: the same", () => drainsOn("SIGTERM"), lifecycleTimeoutMs);

// npm passes SIGTERM on; when npm itself is killed the server notices it is orphaned.
it.each([
  ["SIGTERM", "npm passes it on"],
  ["SIGKILL", "the server notices it is orphaned"],
] as const)(
  "%s to the npm process (%s): the server and PostgreSQL stop cleanly, no orphan is left",
  async (signal: NodeJS.Signals, _why: string) => {
    const npm = await start("npm");
    const pid = postmasterPid();
    const serverPid = ownerPid();
    expect(isAlive(pid)).toBe(true);
    npm.child.kill(signal);
    await waitUntilGone(serverPid, pid);
    expect(isAlive(serverPid)).toBe(false);
    expect(isAlive(pid)).toBe(false);
    expect(npm.output()).toContain('"msg":"stopped"');
    expect(await fetch(`http://127.0.0.1:${npm.port}/healthz`).then(() => "answered", () => "refused")).toBe("refused");
    expect(fs.existsSync(`${dataDirectory}.owner`)).toBe(false);
  },
  lifecycleTimeoutMs,
);

it(
  "after kill -9 of the server, the next start stops the PostgreSQL it left behind and serves",
  async () => {
    const crashed = await start("node");
    const leftBehind = postmasterPid();
    crashed.child.kill("SIGKILL");
    await crashed.exited;
    expect(isAlive(leftBehind)).toBe(true);
    const restarted = await start("node");
    expect(restarted.output()).toContain(`stopping PostgreSQL (pid ${leftBehind}) left running on ${dataDirectory} by a process that died`);
    expect(isAlive(leftBehind)).toBe(false);
    expect((await post(restarted.port, staffToken, "{ __typename }")).status).toBe(200);
    restarted.child.kill("SIGTERM");
    expect(await restarted.exited).toBe(0);
  },
  lifecycleTimeoutMs,
);

it(
  "a second server on the same data directory is refused with the directory and the running process named",
  async () => {
    const first = await start("node");
    const second = await start("node", false);
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`the embedded database in ${dataDirectory} is in use by process ${first.child.pid}`);
    expect(second.output()).not.toContain("    at ");
    expect((await post(first.port, staffToken, "{ __typename }")).status).toBe(200);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
  },
  lifecycleTimeoutMs,
);
