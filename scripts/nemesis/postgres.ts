// PostgreSQL for the nemesis, run with pg_ctl from the embedded package's binaries, so that the
// harness can do to it what happens in production: kill -9 of the postmaster, SIGSTOP of every
// server process, `pg_ctl restart -m fast`, backends terminated. pg_ctl starts the postmaster
// detached; its pid is read from postmaster.pid, never remembered from a child handle.
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { postgresBinaries, postgresRunAsUser } from "../../src/platform/embedded-postgres";

const execFileAsync = promisify(execFile);

/** A start right after kill -9 fails while the old backends still hold shared memory: retried. */
const startAttempts = 60;
const startRetryDelayMs = 250;
const pgCtlTimeoutSeconds = 30;
/** Settings beyond the defaults: loopback only; fsync off because only processes die here, never the machine. */
const serverSettings = ["listen_addresses=127.0.0.1", "unix_socket_directories=''", "max_connections=150", "fsync=off", "idle_in_transaction_session_timeout=60000"];
const watchdogPollSeconds = 1;
/** Polls of 0.2 s for the server to exit after SIGQUIT before its directory is removed anyway. */
const watchdogShutdownPolls = 100;
export const databaseUser = "splice";
export const databaseName = "splice";

export class NemesisPostgres {
  private constructor(
    readonly dataDirectory: string,
    readonly port: number,
    private readonly pgCtl: string,
    private readonly user: { uid: number; gid: number } | undefined,
  ) {}

  /** initdb into a fresh temporary directory (trust on loopback: it listens on 127.0.0.1 only). */
  static async create(port: number): Promise<NemesisPostgres> {
    const binaries = postgresBinaries();
    const pgCtl = path.join(path.dirname(binaries.postgres), "pg_ctl");
    const dataDirectory = fs.mkdtempSync(path.join(os.tmpdir(), "splice-nemesis-pg-"));
    fs.chmodSync(dataDirectory, 0o700);
    const user = await postgresRunAsUser();
    if (user) fs.chownSync(dataDirectory, user.uid, user.gid);
    await execFileAsync(binaries.initdb, [`--pgdata=${dataDirectory}`, "--auth=trust", `--username=${databaseUser}`, "--no-sync"], { ...(user ?? {}) });
    watchOverHarness(dataDirectory);
    return new NemesisPostgres(dataDirectory, port, pgCtl, user);
  }

  get logFile(): string {
    return path.join(this.dataDirectory, "server.log");
  }

  urlFor(database = databaseName, port = this.port): string {
    return `postgresql://${databaseUser}:${databaseUser}@127.0.0.1:${port}/${database}`;
  }

  async start(): Promise<void> {
    const options = ["-p", String(this.port), ...serverSettings.flatMap((setting) => ["-c", setting])].join(" ");
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.pgCtlCommand(["start", "-w", "-t", String(pgCtlTimeoutSeconds), "-l", this.logFile, "-o", options]);
        return;
      } catch (error) {
        if (attempt >= startAttempts) throw new Error(`PostgreSQL did not start: ${describe(error)}\n${this.logTail()}`);
        await sleep(startRetryDelayMs);
      }
    }
  }

  /** `pg_ctl restart -m fast`: sessions terminated, a clean shutdown, started again. */
  async restartFast(): Promise<void> {
    await this.pgCtlCommand(["restart", "-m", "fast", "-w", "-t", String(pgCtlTimeoutSeconds), "-l", this.logFile]);
  }

  /** kill -9 of the postmaster alone: its backends notice and exit by themselves. */
  killPostmaster(): number | undefined {
    const pid = this.postmasterPid();
    if (pid !== undefined) signalQuietly(pid, "SIGKILL");
    return pid;
  }

  /** SIGSTOP to the postmaster and every process it started; returns them for `continueAll`. */
  stopAll(): number[] {
    const postmaster = this.postmasterPid();
    if (postmaster === undefined) return [];
    const pids = [postmaster, ...childrenOf(postmaster)];
    for (const pid of pids) signalQuietly(pid, "SIGSTOP");
    return pids;
  }

  continueAll(pids: number[]): void {
    for (const pid of pids) signalQuietly(pid, "SIGCONT");
  }

  /** pg_terminate_backend of every client session on the service's database but our own. */
  async terminateBackends(): Promise<number> {
    const client = new pg.Client({ connectionString: this.urlFor() });
    client.on("error", () => undefined);
    await client.connect();
    try {
      const result = await client.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
      );
      return result.rowCount ?? 0;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Stops whatever runs (also a stopped or half-dead server) and removes the data directory. */
  async destroy(): Promise<void> {
    const postmaster = this.postmasterPid();
    if (postmaster !== undefined) {
      this.continueAll([postmaster, ...childrenOf(postmaster)]);
      await this.pgCtlCommand(["stop", "-m", "immediate", "-w", "-t", String(pgCtlTimeoutSeconds)]).catch(() => signalQuietly(postmaster, "SIGKILL"));
    }
    fs.rmSync(this.dataDirectory, { recursive: true, force: true });
  }

  postmasterPid(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(path.join(this.dataDirectory, "postmaster.pid"), "utf8").split("\n")[0]);
      return Number.isSafeInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  logTail(lines = 20): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  private async pgCtlCommand(args: string[]): Promise<void> {
    // detached: a terminal's Ctrl-C reaches the harness, which stops PostgreSQL last.
    await execFileAsync(this.pgCtl, ["-D", this.dataDirectory, ...args], { ...(this.user ?? {}), timeout: (pgCtlTimeoutSeconds + 5) * 1000 });
  }
}

/**
 * pg_ctl detaches the postmaster: should the harness itself be killed (kill -9, a CI timeout),
 * nothing would stop it. A detached shell polls the harness and then shuts PostgreSQL down
 * (SIGQUIT: immediate), wakes it first if it was left stopped, and removes its data directory.
 */
function watchOverHarness(dataDirectory: string): void {
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep ${watchdogPollSeconds}; done`,
    `pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)`,
    `if [ -n "$pid" ]; then pkill -CONT -P "$pid"; kill -CONT "$pid"; kill -QUIT "$pid"; fi`,
    // Removed only once the server is gone, or its last writes would refill the directory.
    `tries=0; while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $tries -lt ${watchdogShutdownPolls} ]; do sleep 0.2; tries=$((tries + 1)); done`,
    `rm -rf "$1"`,
  ].join("\n");
  const watchdog = spawn("sh", ["-c", script, "nemesis-watchdog", dataDirectory], { detached: true, stdio: "ignore" });
  watchdog.on("error", () => undefined);
  watchdog.unref();
}

/** Processes whose parent is `parent` (Linux /proc). */
function childrenOf(parent: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name may hold spaces: fields after its closing parenthesis are fixed.
      const parentPid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parentPid === parent) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone: nothing to signal
  }
}

function describe(error: unknown): string {
  const failure = error as { stderr?: string; message?: string };
  return (failure.stderr || failure.message || String(error)).trim();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
