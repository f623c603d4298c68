// The fault schedule: drawn from the seed alone, so the same seed replays the same faults in the
// same order with the same durations. Faults come one at a time (each waits for the previous one
// to heal), so that every answer can be classified by the one fault active when it was sent.
import { Random } from "./random";

export const faultKinds = ["instance-kill", "postmaster-kill", "pg-sigstop", "pg-restart", "backend-terminate", "partition"] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface PlannedFault {
  index: number;
  kind: FaultKind;
  /** Quiet time after the previous fault healed, before this one starts. */
  gapBeforeMs: number;
  /** How long the fault lasts (instance and postmaster kills: until the restart). 0: instantaneous. */
  durationMs: number;
  /** The instance an instance kill hits. */
  instance: number;
}

// Durations the issue asks for: SIGSTOP 1-8 s, partitions of seconds; kills come back within seconds.
const sigstopMs = { min: 1000, max: 8000 };
const partitionMs = { min: 1000, max: 8000 };
const killedDownMs = { min: 300, max: 3000 };
const gapMs = { min: 1500, max: 3500 };
/** A rough cycle length, only to decide how many faults to draw; the run stops at its deadline. */
const plannedHealMs = 3000;
/** Faults drawn beyond the estimate, so a quick run never runs out of schedule. */
const spareFaults = 4;

function durationOf(kind: FaultKind, random: Random): number {
  switch (kind) {
    case "pg-sigstop":
      return random.int(sigstopMs.min, sigstopMs.max);
    case "partition":
      return random.int(partitionMs.min, partitionMs.max);
    case "instance-kill":
    case "postmaster-kill":
      return random.int(killedDownMs.min, killedDownMs.max);
    case "pg-restart":
    case "backend-terminate":
      return 0;
  }
}

/**
 * Faults for a run of `durationMs` on `instances` instances: rounds of every kind in a shuffled
 * order (so a short run still meets every kind), durations drawn per fault.
 */
export function buildSchedule(seed: number, durationMs: number, instances: number): PlannedFault[] {
  const random = new Random(seed).fork("schedule");
  const faults: PlannedFault[] = [];
  let round: FaultKind[] = [];
  const draw = (): PlannedFault => {
    if (round.length === 0) round = random.shuffle(faultKinds);
    const kind = round.shift()!;
    return { index: faults.length, kind, gapBeforeMs: random.int(gapMs.min, gapMs.max), durationMs: durationOf(kind, random), instance: random.int(0, instances - 1) };
  };
  let plannedMs = 0;
  while (plannedMs < durationMs) {
    const fault = draw();
    faults.push(fault);
    plannedMs += fault.gapBeforeMs + fault.durationMs + plannedHealMs;
  }
  for (let spare = 0; spare < spareFaults; spare += 1) faults.push(draw());
  return faults;
}

export function describeFault(fault: PlannedFault): string {
  const target = fault.kind === "instance-kill" ? ` instance ${fault.instance}` : "";
  return `#${fault.index} ${fault.kind}${target} ${fault.durationMs} ms after ${fault.gapBeforeMs} ms`;
}
