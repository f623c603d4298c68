// The real entry point (src/main.ts, what `npm start` runs): SIGTERM with requests in flight
// lets them finish, then the process stops cleanly.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import pg from "pg";
import { mintToken } from "../../src/platform/auth";
import { loadConfig } from "../../src/config";
import { createDatabase, dropDatabase, withDatabase } from "../../src/platform/database-admin";
import { serverUrlVariable, templateDatabaseName } from "../support/test-database";
import { serverArguments } from "../../scripts/server-command";

const root = path.resolve(__dirname, "..", "..");
const port = 4000 + 1000 + (process.pid % 1000);

it("finishes in-flight requests on SIGTERM and exits 0", async () => {
  const databaseUrl = withDatabase(process.env[serverUrlVariable]!, `splice_shutdown_${process.pid}`);
  await createDatabase(databaseUrl, templateDatabaseName);
  const environment = { ...process.env, NODE_ENV: "test", DATABASE_URL: databaseUrl, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info" };
  const server: ChildProcess = spawn(process.execPath, serverArguments(), { cwd: root, env: environment });
  let output = "";
  server.stdout!.on("data", (chunk) => (output += chunk));
  server.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
  try {
    for (let attempt = 0; attempt < 300 && !(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)); attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const config = loadConfig({ NODE_ENV: "test" });
    const staff = mintToken(config.auth, "staff", "shutdown", 600);
    const post = (token: string, query: string) =>
      fetch(`http://127.0.0.1:${port}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify({ query }) });
    const created: any = await (await post(staff, `mutation { createCustomer(input: { email: "shutdown-${process.pid}@example.com", initialSeconds: 10000 }) { id } }`)).json();
    const customerToken = mintToken(config.auth, "customer", created.data.createCustomer.id, 600);
    const inFlight = Array.from({ length: 20 }, () => post(customerToken, `mutation { reserveCredits(input: { estimatedSeconds: 10, endpoint: "bye" }) { replayed } }`));
    await new Promise((resolve) => setTimeout(resolve, 5));
    server.kill("SIGTERM");
    const responses = await Promise.all(inFlight.map((request) => request.then((response) => response.status, () => "refused")));
    expect(await exited).toBe(0);
    expect(output).toContain('"msg":"stopped"');
    // Everything the server accepted was answered in full; nothing half-done is left behind.
    expect(responses.filter((status) => status !== 200 && status !== "refused")).toEqual([]);
    const answered = responses.filter((status) => status === 200).length;
    expect(answered).toBeGreaterThan(0);
    const sql = new pg.Client({ connectionString: databaseUrl });
    sql.on("error", () => undefined);
    await sql.connect();
    const stored = await sql.query("SELECT seconds_remaining, seconds_reserved FROM credit_balance WHERE customer_id = $1", [created.data.createCustomer.id]);
    await sql.end();
    expect(stored.rows[0]).toEqual({ seconds_remaining: 10000 - answered * 10, seconds_reserved: answered * 10 });
  } finally {
    if (server.exitCode === null) server.kill("SIGKILL");
    await dropDatabase(databaseUrl);
  }
});
