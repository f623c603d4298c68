// Where tests get PostgreSQL: TEST_DATABASE_URL (a server on which the user may create
// databases) or an embedded one under .data/test-postgres, separate from `npm start`'s.
import path from "node:path";

export const templateDatabaseName = "splice_test_template";
export const embeddedTestPort = Number(process.env.TEST_EMBEDDED_PG_PORT ?? 54339);
export const embeddedTestDirectory = path.resolve(__dirname, "..", "..", ".data", "test-postgres");
export const serverUrlVariable = "SPLICE_TEST_SERVER_URL";
