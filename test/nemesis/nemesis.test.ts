// The nemesis (scripts/nemesis) for about 75 s with a fixed seed: two instances of the service
// on a PostgreSQL that is killed, stopped, restarted and cut off while a mixed load runs, then
// every check. `npm run nemesis -- --minutes 60` runs the same for an hour (README).
import { faultKinds } from "../../scripts/nemesis/schedule";
import { runNemesis } from "../../scripts/nemesis/run";
import type { Summary } from "../../scripts/nemesis/report";

/** Its schedule's first round holds every fault kind, with a partition and a SIGSTOP near 8 s. */
const fixedSeed = 412;
const loadDurationMs = 55_000;
const testTimeoutMs = 240_000;

let summary: Summary;

beforeAll(async () => {
  summary = await runNemesis({ seed: fixedSeed, loadDurationMs, print: (text) => process.stdout.write(`${text}\n`) });
}, testTimeoutMs);

const result = (name: string) => {
  const found = summary.checks.find((candidate) => candidate.name.startsWith(name));
  if (!found) throw new Error(`no check named ${name}`);
  return found;
};

it("replays the seed's schedule and meets every fault kind", () => {
  expect(summary.seed).toBe(fixedSeed);
  expect(Object.keys(summary.faultsByKind).sort()).toEqual([...faultKinds].sort());
  expect(summary.faults.map((fault) => fault.kind)).toEqual(summary.schedule.map((fault) => fault.kind));
});

it("loses no money and answers match the database", () => {
  expect(result("no money lost")).toMatchObject({ passed: true, examples: [] });
  expect(result("every answered reserve")).toMatchObject({ passed: true, examples: [] });
  expect(result("each idempotency key")).toMatchObject({ passed: true, examples: [] });
  const keys = result("each idempotency key").numbers;
  expect(keys.reservationsStored).toBe(keys.keysAnswered);
  expect(result("confirm-versus-release")).toMatchObject({ passed: true, examples: [] });
  expect(Number(result("confirm-versus-release").numbers.races)).toBeGreaterThan(0);
});

it("keeps seats within the limit and applies every payment exactly once", () => {
  expect(result("seats never over")).toMatchObject({ passed: true, examples: [] });
  const payments = result("every payment applied");
  expect(payments).toMatchObject({ passed: true, examples: [] });
  expect(payments.numbers.applied).toBe(payments.numbers.distinctEvents);
  expect(payments.numbers.grants).toBe(payments.numbers.distinctEvents);
  expect(Number(payments.numbers.deliveries)).toBeGreaterThan(Number(payments.numbers.distinctEvents));
  expect(result("npm run audit clean")).toMatchObject({ passed: true, numbers: { exitCode: 0 } });
});

it("answers only 200s, documented refusals and clean 503s, each in time", () => {
  expect(result("every answer a 200").examples).toEqual([]);
  expect(result("every answer a 200").numbers.unexpected).toBe(0);
  expect(result("every request answered within").examples).toEqual([]);
});

it("loses no instance it did not kill, leaks nothing and heals from every fault", () => {
  expect(result("no instance died").examples).toEqual([]);
  expect(result("nothing leaks")).toMatchObject({ passed: true });
  expect(result("every fault healed")).toMatchObject({ passed: true, examples: [] });
  expect(summary.passed).toBe(true);
});
