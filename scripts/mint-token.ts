// Mints a bearer token: `npm run token -- staff <name> [ttlSeconds]` or
// `npm run token -- customer <customer id> [ttlSeconds]`. Uses AUTH_TOKEN_SECRET like the server.
import { loadConfig } from "../src/config";
import { isValidSubject, mintSignedToken, type SignedRole } from "../src/platform/auth";

const [role, subject, ttlArgument] = process.argv.slice(2);
const config = loadConfig();
if ((role !== "staff" && role !== "customer") || !subject || !isValidSubject(role as SignedRole, subject)) {
  process.stderr.write(
    "usage: npm run token -- staff <name: a-z 0-9 . _ -> [ttlSeconds]\n" +
      "       npm run token -- customer <customer uuid> [ttlSeconds]\n",
  );
  process.exit(2);
}
const ttlSeconds = ttlArgument ? Number(ttlArgument) : config.auth.defaultTokenTtlSeconds;
if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
  process.stderr.write("ttlSeconds must be a positive whole number\n");
  process.exit(2);
}
process.stdout.write(`${mintSignedToken(config.auth.tokenSecret, role as SignedRole, subject, ttlSeconds)}\n`);
