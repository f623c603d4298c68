// The service as real processes: `src/main.ts` under tsx, as ApiProcess runs it, each on a port
// of its own kept across restarts (so "instance 1" stays one address for the clients). A
// supervisor restarts any instance that dies; deaths the nemesis did not cause are recorded.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { serverArguments } from "../server-command";

const root = path.resolve(__dirname, "..", "..");
/** An instance must answer /readyz within this after its spawn. */
const startTimeoutMs = 60_000;
const readyPollMs = 100;
/** Before the supervisor restarts an instance that died on its own (as systemd's RestartSec). */
const unexpectedRestartDelayMs = 1000;
/** Output kept per instance for the report (the whole output goes to its log file). */
const outputTailChars = 4000;

export interface InstanceExit {
  instance: number;
  pid: number;
  code: number | null;
  signal: string | null;
  atMs: number;
  /** It had answered /readyz: a running instance died, not a failed start. */
  wasReady: boolean;
  outputTail: string;
}

export class Instance {
  private child: ChildProcess | undefined;
  private killedByNemesis = new Set<number>();
  private outputTail = "";
  private stopping = false;
  ready = false;
  /** From each exit (killed or not) until ready again; the end is the run's end while still down. */
  readonly downIntervals: { fromMs: number; toMs: number | null }[] = [];
  /** Spawn to /readyz of every start, for the report. */
  readonly startDurationsMs: number[] = [];

  constructor(
    readonly index: number,
    readonly port: number,
    private readonly environment: Record<string, string>,
    private readonly logFile: string,
    private readonly nowMs: () => number,
    private readonly onUnexpectedExit: (exit: InstanceExit) => void,
  ) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns and waits for /readyz; returns spawn-to-ready in ms (throws past the start timeout). */
  async start(): Promise<number> {
    const startedAt = Date.now();
    const child = this.spawnChild();
    while (!(await this.isReady())) {
      if (this.stopping) throw new Error(`instance ${this.index}: stopped while starting`);
      if (this.child !== child || child.exitCode !== null || child.signalCode !== null) throw new Error(`instance ${this.index} exited while starting:\n${this.outputTail}`);
      if (Date.now() - startedAt > startTimeoutMs) throw new Error(`instance ${this.index} not ready within ${startTimeoutMs} ms:\n${this.outputTail}`);
      await new Promise((resolve) => setTimeout(resolve, readyPollMs));
    }
    this.ready = true;
    const open = this.downIntervals.at(-1);
    if (open && open.toMs === null) open.toMs = this.nowMs();
    const durationMs = Date.now() - startedAt;
    this.startDurationsMs.push(durationMs);
    return durationMs;
  }

  /** kill -9, as the nemesis does; waits for the exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    this.killedByNemesis.add(child.pid!);
    // Down from the signal on: a request cut by the kill may fail before the exit is seen.
    this.downIntervals.push({ fromMs: this.nowMs(), toMs: null });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  /** At the end: SIGTERM (an orderly stop), then SIGKILL if it does not exit in time. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || !this.alive) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  private spawnChild(): ChildProcess {
    this.ready = false;
    const output = fs.openSync(this.logFile, "a");
    const child = spawn(process.execPath, serverArguments(), {
      cwd: root,
      env: { ...process.env, ...this.environment, PORT: String(this.port), HOST: "127.0.0.1" },
      // Its own process group: Ctrl-C reaches the harness, which stops the instances itself.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const keep = (chunk: Buffer) => {
      fs.writeSync(output, chunk);
      this.outputTail = (this.outputTail + chunk.toString("utf8")).slice(-outputTailChars);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.on("error", (error) => keep(Buffer.from(`nemesis: spawn error: ${error.message}\n`)));
    child.on("exit", (code, signal) => {
      fs.closeSync(output);
      const wasReady = this.ready;
      this.ready = false;
      if (this.downIntervals.at(-1)?.toMs !== null) this.downIntervals.push({ fromMs: this.nowMs(), toMs: null });
      if (this.killedByNemesis.has(child.pid!) || this.stopping) return;
      this.onUnexpectedExit({ instance: this.index, pid: child.pid!, code, signal, atMs: this.nowMs(), wasReady, outputTail: this.outputTail });
      setTimeout(() => {
        if (!this.stopping && this.child === child) this.start().catch(() => undefined);
      }, unexpectedRestartDelayMs).unref();
    });
    return child;
  }

  private async isReady(): Promise<boolean> {
    if (!this.alive) return false;
    return fetch(`${this.baseUrl}/readyz`, { signal: AbortSignal.timeout(readyPollMs * 10) }).then((response) => response.ok, () => false);
  }
}
