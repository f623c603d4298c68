// Mints a bearer JWT (HS256, AUTH_JWT_SECRET, like the server verifies):
// `npm run token -- staff <name> [ttlSeconds]` or `npm run token -- customer <customer id> [ttlSeconds]`.
import { loadConfig } from "../src/config";
import { isValidSubject, mintToken, type TokenRole } from "../src/platform/auth";

const [role, subject, ttlArgument] = process.argv.slice(2);
const config = loadConfig();
if ((role !== "staff" && role !== "customer") || !subject || !isValidSubject(role as TokenRole, subject)) {
  process.stderr.write(
    "usage: npm run token -- staff <name: a-z 0-9 . _ -> [ttlSeconds]\n" +
      "       npm run token -- customer <customer uuid> [ttlSeconds]\n",
  );
  process.exit(2);
}
if (!config.auth.jwtSecret) {
  process.stderr.write("AUTH_JWT_SECRET is not set: this deployment accepts only its identity provider's tokens\n");
  process.exit(2);
}
const ttlSeconds = ttlArgument ? Number(ttlArgument) : config.auth.defaultTokenTtlSeconds;
if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
  process.stderr.write("ttlSeconds must be a positive whole number\n");
  process.exit(2);
}
process.stdout.write(`${mintToken(config.auth, role as TokenRole, subject, ttlSeconds)}\n`);
