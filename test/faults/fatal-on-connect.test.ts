// A server that answers a new connection's startup with ReadyForQuery and, in the same write, a
// FATAL (what PostgreSQL sends when its postmaster dies). pg parses both in one tick: connect()
// resolves and 'error' is emitted before the caller's await continues, so a listener attached
// after `await pool.connect()` comes too late and the process dies. Each pool is tried in a
// child process, where such a crash is seen as an exit code.
import { execFile } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
const root = path.resolve(__dirname, "..", "..");

/** A PostgreSQL backend message: type byte, length, body. */
function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, "latin1");
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const authenticationOk = message("R", Buffer.from([0, 0, 0, 0]));
const readyForQuery = message("Z", Buffer.from("I", "latin1"));
const fields = (entries: [string, string][]) => Buffer.concat([...entries.map(([code, text]) => Buffer.from(`${code}${text}\0`, "utf8")), Buffer.from([0])]);
const postmasterDied = message(
  "E",
  fields([["S", "FATAL"], ["V", "FATAL"], ["C", "57P01"], ["M", "terminating connection due to unexpected postmaster exit"]]),
);

let server: net.Server;
let port: number;

beforeAll(async () => {
  server = net.createServer((socket) => {
    socket.on("error", () => undefined);
    // The startup message is the first thing a client sends; answer it in one write.
    socket.once("data", () => socket.end(Buffer.concat([authenticationOk, readyForQuery, postmasterDied])));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Connects through one pool, waits for the FATAL to land, and prints what it heard. */
const probe = (pool: string) => `
  const pg = require("pg");
  const { createPool } = require("./src/platform/pg-adapter");
  const url = "postgresql://splice:splice@127.0.0.1:${port}/splice";
  const reported = [];
  const pool = ${pool};
  pool.connect().then(async (client) => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    client.release(true);
    console.log("survived; reported: " + reported.join(","));
  });
`;

async function runProbe(pool: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ["--import", "tsx", "-e", probe(pool)], { cwd: root });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

it("a plain pg.Pool dies of it (the fake server reproduces the fault)", async () => {
  const { code, output } = await runProbe(`new pg.Pool({ connectionString: url })`);
  expect(code).not.toBe(0);
  expect(output).toContain("terminating connection due to unexpected postmaster exit");
});

it("every pool the service creates survives it and reports the lost connection", async () => {
  const { code, output } = await runProbe(
    `createPool({ url, size: 1, acquireTimeoutMs: 1000, queryTimeoutMs: 1000, onConnectionError: (error) => reported.push(error.code) })`,
  );
  // pg reports the FATAL, then the socket's end (without a code).
  expect({ code, output: output.trim() }).toEqual({ code: 0, output: expect.stringMatching(/^survived; reported: 57P01(,|$)/) });
});
