import type { RunningPostgres } from "../../src/platform/embedded-postgres";

export default async function globalTeardown(): Promise<void> {
  const cluster = (globalThis as { spliceTestCluster?: RunningPostgres }).spliceTestCluster;
  await cluster?.stop();
}
