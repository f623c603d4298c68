import pino, { type Logger } from "pino";
import type { Config } from "../config";

export function createLogger(config: Config): Logger {
  const level = process.env.LOG_LEVEL ?? (config.environment === "test" ? "silent" : "info");
  return pino({
    level,
    base: { service: "splice-api" },
    redact: { paths: ["req.headers.authorization", "*.token", "*.deviceToken", "*.key", "*.email"], censor: "[redacted]" },
  });
}
