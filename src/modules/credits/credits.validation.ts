// Input rules of the credits operations: pure, each limit from configuration.
import type { Config } from "../../config";
import { badInput } from "../../platform/failures";
import { failureOf, type Check } from "../../platform/validation";

const endpointPattern = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;
const idempotencyKeyPattern = /^[\x21-\x7E]+$/;

type Limits = Config["limits"] & Config["credits"];

export function checkEndpoint(endpoint: string, limits: Limits): Check {
  if (endpoint.length < 1 || endpoint.length > limits.endpointMaxLength || !endpointPattern.test(endpoint)) {
    return failureOf(
      badInput(
        "endpoint",
        `endpoint must be 1 to ${limits.endpointMaxLength} characters of letters, digits and . _ : / -`,
      ),
    );
  }
  return undefined;
}

export function checkIdempotencyKey(key: string | null | undefined, limits: Limits): Check {
  if (key === null || key === undefined) return undefined;
  if (key.length < 1 || key.length > limits.idempotencyKeyMaxLength || !idempotencyKeyPattern.test(key)) {
    return failureOf(
      badInput("idempotencyKey", `idempotencyKey must be 1 to ${limits.idempotencyKeyMaxLength} printable ASCII characters`),
    );
  }
  return undefined;
}

export function checkSeconds(field: string, seconds: number, minSeconds: number, maxSeconds: number): Check {
  if (!Number.isSafeInteger(seconds) || seconds < minSeconds || seconds > maxSeconds) {
    return failureOf(badInput(field, `${field} must be a whole number of seconds from ${minSeconds} to ${maxSeconds}`));
  }
  return undefined;
}

export function checkAdjustment(deltaSeconds: number, limits: Limits): Check {
  if (!Number.isSafeInteger(deltaSeconds) || deltaSeconds === 0 || Math.abs(deltaSeconds) > limits.adjustmentMaxAbsSeconds) {
    return failureOf(
      badInput("deltaSeconds", `deltaSeconds must be a non-zero whole number of at most ${limits.adjustmentMaxAbsSeconds} in size`),
    );
  }
  return undefined;
}
