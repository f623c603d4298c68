// The summary: printed as tables at the end of a run and written as JSON beside the request log.
import type { CheckResult } from "./checks";
import { classify, type CheckInput } from "./checks";
import type { RunLog } from "./log";
import type { PlannedFault } from "./schedule";

export interface Summary {
  seed: number;
  loadDurationMs: number;
  wallMs: number;
  artifactsDirectory: string;
  schedule: PlannedFault[];
  faults: RunLog["faults"];
  faultsByKind: Record<string, { count: number; healMedianMs: number | null; healMaxMs: number | null; unhealed: number }>;
  /** By window, then by answer class (`operation status code`): count and slowest. */
  answersByWindow: Record<string, Record<string, { count: number; maxMs: number; unexpected: number }>>;
  instanceStartMs: number[][];
  checks: CheckResult[];
  passed: boolean;
}

const median = (values: number[]) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
};

export function summarize(base: Omit<Summary, "faultsByKind" | "answersByWindow" | "passed">, log: RunLog, down: CheckInput["downIntervals"]): Summary {
  const faultsByKind: Summary["faultsByKind"] = {};
  for (const fault of log.faults) {
    const entry = (faultsByKind[fault.kind] ??= { count: 0, healMedianMs: null, healMaxMs: null, unhealed: 0 });
    entry.count += 1;
    if (fault.healMs === null) entry.unhealed += 1;
  }
  for (const [kind, entry] of Object.entries(faultsByKind)) {
    const heals = log.faults.filter((fault) => fault.kind === kind && fault.healMs !== null).map((fault) => fault.healMs!);
    entry.healMedianMs = median(heals);
    entry.healMaxMs = heals.length > 0 ? Math.max(...heals) : null;
  }
  const answersByWindow: Summary["answersByWindow"] = {};
  for (const record of log.requests) {
    const window = (answersByWindow[record.window] ??= {});
    const label = `${record.operation} ${record.status} ${record.code}${record.late ? " (late)" : ""}`;
    const entry = (window[label] ??= { count: 0, maxMs: 0, unexpected: 0 });
    entry.count += 1;
    entry.maxMs = Math.max(entry.maxMs, record.durationMs ?? 0);
    if (record.durationMs !== null && classify(record, down) === "unexpected") entry.unexpected += 1;
  }
  return { ...base, faultsByKind, answersByWindow, passed: base.checks.every((result) => result.passed) };
}

function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  const line = (row: string[]) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd();
  return [line(cells[0]!), line(widths.map((width) => "-".repeat(width))), ...cells.slice(1).map(line)].join("\n");
}

export function formatSummary(summary: Summary): string {
  const parts: string[] = [];
  parts.push(`nemesis seed ${summary.seed}: ${summary.faults.length} faults in ${(summary.loadDurationMs / 1000).toFixed(0)} s of load, ${(summary.wallMs / 1000).toFixed(0)} s in all`);
  parts.push(
    table(
      ["fault", "count", "heal median ms", "heal max ms", "unhealed"],
      Object.entries(summary.faultsByKind).map(([kind, entry]) => [kind, entry.count, entry.healMedianMs ?? "-", entry.healMaxMs ?? "-", entry.unhealed]),
    ),
  );
  const answerRows: (string | number)[][] = [];
  for (const [window, classes] of Object.entries(summary.answersByWindow).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [label, entry] of Object.entries(classes).sort(([a], [b]) => a.localeCompare(b))) {
      answerRows.push([window, label, entry.count, entry.maxMs, entry.unexpected > 0 ? `${entry.unexpected} UNEXPECTED` : ""]);
    }
  }
  parts.push(table(["window (fault when sent)", "answer (operation status code)", "count", "max ms", ""], answerRows));
  if (summary.checks.length === 0) parts.push("cancelled before the checks: none ran");
  else parts.push(
    table(
      ["check", "result", "numbers"],
      summary.checks.map((result) => [result.name, result.passed ? "pass" : "FAIL", Object.entries(result.numbers).map(([name, value]) => `${name}=${value}`).join(" ")]),
    ),
  );
  for (const result of summary.checks.filter((candidate) => !candidate.passed)) {
    parts.push(`FAIL ${result.name}:\n${result.examples.map((example) => `  - ${example}`).join("\n")}`);
  }
  parts.push(`${summary.passed ? "all checks passed" : "CHECKS FAILED"}; request log and summary in ${summary.artifactsDirectory}`);
  return parts.join("\n\n");
}
