// `npm run nemesis -- --minutes N [--seed S] [--instances K]`: the service as real processes
// under a mixed load and a seeded schedule of faults, then the checks. Prints the seed first;
// the same seed replays the same schedule. Exit code 1 when a check fails, 130 when cancelled.
import { freshSeed } from "./random";
import { defaultInstances, runNemesis } from "./run";

const usage = "usage: npm run nemesis -- --minutes N [--seed S] [--instances K]";
const minimumInstances = 2;

function parseArguments(argv: string[]): { minutes: number; seed: number; instances: number } {
  const values = new Map<string, string>();
  for (let index = 0; index < argv.length; index += 2) {
    const name = argv[index]!;
    const value = argv[index + 1];
    if (!name.startsWith("--") || value === undefined) throw new Error(usage);
    values.set(name.slice(2), value);
  }
  const minutes = Number(values.get("minutes"));
  const seed = values.has("seed") ? Number(values.get("seed")) : freshSeed();
  const instances = values.has("instances") ? Number(values.get("instances")) : defaultInstances;
  if (!(minutes > 0) || !Number.isSafeInteger(seed) || seed < 0 || !Number.isSafeInteger(instances) || instances < minimumInstances) throw new Error(usage);
  return { minutes, seed, instances };
}

async function main(): Promise<void> {
  const { minutes, seed, instances } = parseArguments(process.argv.slice(2));
  const cancel = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`nemesis: ${signal}: undoing the current fault, stopping the load, cleaning up\n`);
    cancel.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const summary = await runNemesis({ seed, loadDurationMs: minutes * 60_000, instances, signal: cancel.signal });
  process.exitCode = cancel.signal.aborted ? 130 : summary.passed ? 0 : 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`nemesis failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 2;
});
