// The real entry point (src/main.ts) as a child process on a database of the test's choosing,
// with HTTP helpers, so that a fault test can see whether the process itself survives.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { loadConfig } from "../../src/config";
import { mintToken } from "../../src/platform/auth";
import { freePort } from "./test-database";
import { serverArguments } from "../../scripts/server-command";

const root = path.resolve(__dirname, "..", "..");
const startTimeoutMs = 60_000;

export interface Answer {
  status: number;
  retryAfter: string | null;
  body: { data?: Record<string, any> | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

export class ApiProcess {
  output = "";
  readonly exited: Promise<number | null>;
  private readonly auth = loadConfig({ NODE_ENV: "test" }).auth;

  private constructor(
    private readonly child: ChildProcess,
    readonly baseUrl: string,
  ) {
    child.stdout!.on("data", (chunk) => (this.output += chunk));
    child.stderr!.on("data", (chunk) => (this.output += chunk));
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  }

  static async start(databaseUrl: string, environment: Record<string, string> = {}): Promise<ApiProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, serverArguments(), {
      cwd: root,
      env: { ...process.env, NODE_ENV: "test", DATABASE_URL: databaseUrl, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", ...environment },
    });
    const api = new ApiProcess(child, `http://127.0.0.1:${port}`);
    const deadline = Date.now() + startTimeoutMs;
    while (!(await fetch(`${api.baseUrl}/readyz`).then((response) => response.ok, () => false))) {
      if (api.alive === false || Date.now() > deadline) throw new Error(`the API did not start:\n${api.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return api;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a signal (SIGTERM: an orderly stop) and waits for the exit code. */
  async signal(name: NodeJS.Signals): Promise<number | null> {
    this.child.kill(name);
    return this.exited;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  staffToken(): string {
    return mintToken(this.auth, "staff", "faults", 3600);
  }

  customerToken(customerId: string): string {
    return mintToken(this.auth, "customer", customerId, 3600);
  }

  async graphql(token: string, query: string, variables: Record<string, unknown> = {}): Promise<Answer> {
    const response = await fetch(`${this.baseUrl}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as Answer["body"] };
  }

  async get(route: string): Promise<{ status: number; text: string }> {
    const response = await fetch(`${this.baseUrl}${route}`);
    return { status: response.status, text: await response.text() };
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

/** The value of an unlabelled (or the given labelled) sample in a Prometheus text page. */
export function metricValue(page: string, sample: string): number | undefined {
  const line = page.split("\n").find((candidate) => candidate.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}
