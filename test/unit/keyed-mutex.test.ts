import { withDeadline } from "../../src/platform/deadline";
import { KeyedMutex } from "../../src/platform/keyed-mutex";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it("runs one key's work one at a time, in order, and other keys alongside", async () => {
  const mutex = new KeyedMutex();
  const events: string[] = [];
  const job = (name: string, key: string, ms: number) =>
    mutex.run(key, async () => {
      events.push(`${name} start`);
      await sleep(ms);
      events.push(`${name} end`);
    });
  await Promise.all([job("a1", "a", 30), job("a2", "a", 10), job("b1", "b", 5)]);
  expect(events).toEqual(["a1 start", "b1 start", "b1 end", "a1 end", "a2 start", "a2 end"]);
  expect(mutex.size).toBe(0);
});

it("a waiter whose deadline passes gives up without letting a later one overtake the running work", async () => {
  const mutex = new KeyedMutex();
  const events: string[] = [];
  const running = mutex.run("k", async () => {
    events.push("A start");
    await sleep(80);
    events.push("A end");
  });
  const gaveUp = withDeadline(20, () => mutex.run("k", async () => events.push("B ran"))).catch((error: Error) => events.push(`B gave up: ${error.name}`));
  await sleep(40);
  const later = mutex.run("k", async () => events.push("C ran"));
  await Promise.all([running, gaveUp, later]);
  expect(events).toEqual(["A start", "B gave up: ServiceUnavailableError", "A end", "C ran"]);
  expect(mutex.size).toBe(0);
});
