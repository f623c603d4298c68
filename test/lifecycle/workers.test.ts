// WEB_CONCURRENCY=2: the real entry point as a primary with two node:cluster workers on one
// port. Both serve, money stays exact across them, a dead worker is replaced, and SIGTERM stops
// every process.
import fs from "node:fs";
import { ApiProcess } from "../support/api-process";
import { expectConsistentLedger } from "../support/ledger-invariants";
import { startTestServer, type TestServer } from "../support/test-server";

let server: TestServer;
let api: ApiProcess;
beforeAll(async () => {
  server = await startTestServer();
  api = await ApiProcess.start(server.databaseUrl, { WEB_CONCURRENCY: "2" });
});
afterAll(async () => {
  await api.stop();
  await server.close();
});

/** The primary's children that are workers (node processes; esbuild's service is not). */
function workerPids(primaryPid: number): number[] {
  return fs
    .readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8").trim();
        const [, comm, rest] = /^\d+ \((.*)\) (.*)$/.exec(stat)!;
        const parentPid = Number(rest!.split(" ")[1]);
        return parentPid === primaryPid && comm === "node" ? [Number(entry)] : [];
      } catch {
        return [];
      }
    });
}

/** Which processes answer: each worker's /metrics names its pid. */
async function answeringWorkers(requests: number): Promise<Set<string>> {
  const pids = new Set<string>();
  for (let request = 0; request < requests; request += 1) {
    const response = await fetch(`${api.baseUrl}/metrics`, { headers: { connection: "close" } });
    pids.add(/^splice_process_info\{pid="(\d+)"\} 1$/m.exec(await response.text())?.[1] ?? "none");
  }
  return pids;
}

it("serves from both workers, and 10 racing reservations of 360 s on 1,800 s across them succeed exactly 5 times", async () => {
  const workers = workerPids(api.pid);
  expect(workers).toHaveLength(2);
  expect([...(await answeringWorkers(20))].sort()).toEqual(workers.map(String).sort());

  const customer = await server.createCustomer({ initialSeconds: 1800 });
  const token = api.customerToken(customer.id);
  const attempts = await Promise.all(
    Array.from({ length: 10 }, () =>
      fetch(`${api.baseUrl}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}`, connection: "close" },
        body: JSON.stringify({ query: `mutation { reserveCredits(input: { estimatedSeconds: 360, endpoint: "workers" }) { reservation { id } } }` }),
      }).then(async (response) => ({ status: response.status, body: (await response.json()) as any })),
    ),
  );
  expect(attempts.filter((attempt) => attempt.body.data?.reserveCredits)).toHaveLength(5);
  expect(attempts.filter((attempt) => attempt.status === 402)).toHaveLength(5);
  const stored = await expectConsistentLedger(server.sql, customer.id);
  expect(stored).toMatchObject({ secondsRemaining: 0, secondsReserved: 1800 });
});

it("replaces a worker that dies", async () => {
  const [victim] = workerPids(api.pid);
  process.kill(victim!, "SIGKILL");
  const deadline = Date.now() + 60_000;
  let pids = workerPids(api.pid);
  while ((pids.includes(victim!) || pids.length < 2) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    pids = workerPids(api.pid);
  }
  expect(pids).toHaveLength(2);
  expect(pids).not.toContain(victim);
  while ((await answeringWorkers(10)).size < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  expect((await answeringWorkers(20)).size).toBe(2);
  expect(api.output).toContain("a worker died; starting another");
});

it("stops every worker, then itself, on SIGTERM", async () => {
  const workers = workerPids(api.pid);
  expect(await api.signal("SIGTERM")).toBe(0);
  const alive = workers.filter((pid) => fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z "));
  expect(alive).toEqual([]);
});
