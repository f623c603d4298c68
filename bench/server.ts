// The server under benchmark, started as `npm start` runs it, ready once /readyz says so.
import type { ChildProcess } from "node:child_process";

const readyAttempts = 300;
const readyPollMs = 100;

export async function waitForReady(server: ChildProcess, port: number): Promise<void> {
  for (let attempt = 0; attempt < readyAttempts; attempt += 1) {
    if (server.exitCode !== null) throw new Error(`server exited with ${server.exitCode}`);
    if (await fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, readyPollMs));
  }
  throw new Error("server did not become ready");
}

/** The value at `fraction` of an ascending list (nearest rank); 0 for an empty one. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}
