// Where tests get PostgreSQL: TEST_DATABASE_URL (a server on which the user may create
// databases) or an embedded one under .data/test-postgres, separate from `npm start`'s, on a
// free port unless TEST_EMBEDDED_PG_PORT names one (so test runs of several checkouts coexist).
import net from "node:net";
import path from "node:path";

export const templateDatabaseName = "splice_test_template";
export const embeddedTestDirectory = path.resolve(__dirname, "..", "..", ".data", "test-postgres");
export const serverUrlVariable = "SPLICE_TEST_SERVER_URL";

/** The port of the test run's shared embedded PostgreSQL: TEST_EMBEDDED_PG_PORT, or a free one. */
export async function embeddedTestPort(): Promise<number> {
  if (process.env.TEST_EMBEDDED_PG_PORT) return Number(process.env.TEST_EMBEDDED_PG_PORT);
  return freePort();
}

/** A port nothing listens on right now (for a test's own server or PostgreSQL). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
