import pino, { type Logger } from "pino";
import type { Config } from "../config";

export function createLogger(config: Config): Logger {
  const level = process.env.LOG_LEVEL ?? (config.environment === "test" ? "silent" : "info");
  return pino({
    level,
    base: { service: "splice-api" },
    // Secrets and personal data never reach the log, even when an object carrying them is logged.
    redact: {
      paths: ["req.headers.authorization", "req.headers.cookie", 'req.headers["stripe-signature"]', "*.token", "*.deviceToken", "*.key", "*.email", "*.to", "*.secret", "*.password"],
      censor: "[redacted]",
    },
  });
}
