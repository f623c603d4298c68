// One nemesis run: the cluster, the fixtures, the load and the faults for the given time, then
// the checks and the summary. Everything started here is stopped in `finally`, also when the
// run is cancelled (Ctrl-C) or fails.
import fs from "node:fs";
import path from "node:path";
import { runChecks, type CheckInput } from "./checks";
import { LoadClient } from "./client";
import { Cluster } from "./cluster";
import { FaultInjector } from "./faults";
import { createFixtures } from "./fixtures";
import type { InstanceExit } from "./instances";
import { Load } from "./load";
import { RunLog } from "./log";
import { sleep } from "./postgres";
import { Random } from "./random";
import { formatSummary, summarize, type Summary } from "./report";
import { buildSchedule, describeFault } from "./schedule";
import { buildServer } from "../server-command";

export const defaultInstances = 2;
export const artifactsRoot = path.resolve(__dirname, "..", "..", "test-artifacts", "nemesis");

export interface NemesisOptions {
  seed: number;
  /** Load under faults; setup before and checks after come on top. */
  loadDurationMs: number;
  instances?: number;
  signal?: AbortSignal;
  print?: (text: string) => void;
}

export async function runNemesis(options: NemesisOptions): Promise<Summary> {
  const print = options.print ?? ((text: string) => process.stdout.write(`${text}\n`));
  const instanceCount = options.instances ?? defaultInstances;
  const loadMinutes = options.loadDurationMs / 60_000;
  print(`nemesis seed ${options.seed} (replay: npm run nemesis -- --minutes ${Number(loadMinutes.toFixed(3))} --seed ${options.seed})`);
  const artifactsDirectory = path.join(artifactsRoot, `${options.seed}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  fs.mkdirSync(artifactsDirectory, { recursive: true });
  const log = new RunLog(path.join(artifactsDirectory, "requests.jsonl"));
  const schedule = buildSchedule(options.seed, options.loadDurationMs, instanceCount);
  buildServer();
  print(`schedule: ${schedule.map(describeFault).join("; ")}`);
  const cancelled = () => options.signal?.aborted === true;
  const unexpectedExits: InstanceExit[] = [];
  let cluster: Cluster | undefined;
  let injector: FaultInjector | undefined;
  try {
    cluster = await Cluster.start({
      instances: instanceCount,
      artifactsDirectory,
      nowMs: () => log.nowMs(),
      onUnexpectedExit: (exit) => {
        unexpectedExits.push(exit);
        print(`instance ${exit.instance} (pid ${exit.pid}) exited by itself at ${exit.atMs} ms: code ${exit.code}, signal ${exit.signal}`);
      },
    });
    const random = new Random(options.seed);
    const fixtures = await createFixtures(cluster, random.fork("fixtures"), loadMinutes);
    const client = new LoadClient(log, cluster);
    const load = new Load(client, fixtures, random.fork("load"), instanceCount);
    injector = new FaultInjector(cluster, log, client, fixtures.probeToken);
    const loadStartedMs = log.nowMs();
    print(`cluster ready after ${loadStartedMs} ms: PostgreSQL on ${cluster.postgres.port}, proxy on ${cluster.proxy.port}, instances ${cluster.instances.map((instance) => instance.port).join(", ")}`);
    load.start(options.loadDurationMs);
    await injector.run(schedule, loadStartedMs + options.loadDurationMs, cancelled);
    while (!cancelled() && log.nowMs() < loadStartedMs + options.loadDurationMs) await sleep(100);
    await load.stop();
    if (!cancelled()) await load.deliverRemaining();
    await client.drain();
    const downIntervals: CheckInput["downIntervals"] = cluster.instances.flatMap((instance) =>
      instance.downIntervals.map((interval) => ({ instance: instance.index, fromMs: interval.fromMs, toMs: interval.toMs ?? log.nowMs() })),
    );
    const checks = cancelled()
      ? []
      : await runChecks({
          log,
          fixtures,
          directDatabaseUrl: cluster.directDatabaseUrl,
          baseUrls: cluster.instances.map((instance) => instance.baseUrl),
          downIntervals,
          unexpectedExits,
          racedReservations: load.racedReservations,
        });
    const summary = summarize(
      {
        seed: options.seed,
        loadDurationMs: options.loadDurationMs,
        wallMs: log.nowMs(),
        artifactsDirectory,
        schedule: schedule.filter((fault) => fault.index < log.faults.length),
        faults: log.faults,
        instanceStartMs: cluster.instances.map((instance) => instance.startDurationsMs),
        checks,
      },
      log,
      downIntervals,
    );
    if (cancelled()) summary.passed = false;
    fs.writeFileSync(path.join(artifactsDirectory, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    print(formatSummary(summary));
    return summary;
  } finally {
    injector?.undoAll();
    if (cluster) fs.writeFileSync(path.join(artifactsDirectory, "postgres.log"), cluster.postgres.logTail(Number.MAX_SAFE_INTEGER));
    await cluster?.stop();
    await log.close();
  }
}
