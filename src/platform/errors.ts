// The one translator from failures to the contract's error codes and HTTP statuses, and the
// mask that keeps stack traces, SQL and secrets away from clients.
import type { ApolloServerPlugin } from "@apollo/server";
import { unwrapResolverError } from "@apollo/server/errors";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { isClientFailure, ServiceUnavailableError, type ClientFailure, type Outcome } from "./failures";
import { isDatabaseUnavailable } from "./database";

export type ErrorCode = ClientFailure["code"] | "SERVICE_UNAVAILABLE" | "INTERNAL_SERVER_ERROR";

const defaultMessages: Record<ErrorCode, string> = {
  UNAUTHENTICATED: "A valid bearer token is required",
  FORBIDDEN: "Not allowed",
  BAD_USER_INPUT: "Invalid input",
  CUSTOMER_NOT_FOUND: "Customer not found",
  INSUFFICIENT_CREDITS: "Not enough credits",
  RESERVATION_NOT_FOUND: "Reservation not found",
  RESERVATION_SETTLED: "Reservation is no longer active",
  INVALID_LICENSE_KEY: "License key must have the form SPLICE-XXXX-XXXX-XXXX",
  LICENSE_NOT_FOUND: "License key not found",
  LICENSE_DEACTIVATED: "License key deactivated",
  DEVICE_LIMIT_REACHED: "Every device seat of this license is taken",
  TOO_MANY_REQUESTS: "Too many requests",
  DEVICE_NOT_FOUND: "Device not found",
  STRIPE_EVENT_NOT_FOUND: "No Stripe event with this id was received",
  PAYMENT_PROVIDER_ERROR: "The payment provider refused the request",
  SERVICE_UNAVAILABLE: "Service temporarily unavailable, retry later",
  INTERNAL_SERVER_ERROR: "Internal server error",
};

/** HTTP status of a response whose only error (or every error) has this code. */
const httpStatusByCode: Partial<Record<ErrorCode, number>> = {
  INSUFFICIENT_CREDITS: 402,
  TOO_MANY_REQUESTS: 429,
  PAYMENT_PROVIDER_ERROR: 502,
  SERVICE_UNAVAILABLE: 503,
};

/** A failure to retry later: the database out of reach, conflicts beyond their retries, a deadline passed. */
export function isUnavailable(error: unknown): boolean {
  return error instanceof ServiceUnavailableError || isDatabaseUnavailable(error);
}

/** Marks errors made here, so the mask can tell them from everything else. */
class TranslatedError extends GraphQLError {}

function extensionsOf(failure: ClientFailure): Record<string, unknown> {
  switch (failure.code) {
    case "INSUFFICIENT_CREDITS":
      return { secondsRemaining: failure.secondsRemaining };
    case "BAD_USER_INPUT":
      return failure.field ? { field: failure.field } : {};
    case "RESERVATION_SETTLED":
      return { status: failure.status };
    case "DEVICE_LIMIT_REACHED":
      return { maxDevices: failure.maxDevices };
    case "TOO_MANY_REQUESTS":
      return { retryAfterSeconds: failure.retryAfterSeconds };
    default:
      return {};
  }
}

/**
 * For errors raised before the operation runs (identifying the caller, checking the document),
 * where Apollo takes the HTTP status and headers from the error itself (`extensions.http`,
 * headers as a Map) and strips them from the answer.
 */
export function withHttpStatus(error: GraphQLError, status: number, headers: Record<string, string> = {}): GraphQLError {
  Object.assign(error.extensions, { http: { status, headers: new Map(Object.entries(headers)) } });
  return error;
}

/** SERVICE_UNAVAILABLE raised before the operation runs. */
export function serviceUnavailableError(retryAfterSeconds: number): GraphQLError {
  const error = new TranslatedError(defaultMessages.SERVICE_UNAVAILABLE, { extensions: { code: "SERVICE_UNAVAILABLE", retryAfterSeconds } });
  return withHttpStatus(error, 503, { "retry-after": String(retryAfterSeconds) });
}

/** An internal failure (see failures.ts) that reached a client: masked and reported as a bug. */
class InternalFailureError extends Error {
  override readonly name = "InternalFailureError";
}

export function toGraphQLError(failure: ClientFailure): GraphQLError {
  const message = "message" in failure && failure.message ? failure.message : defaultMessages[failure.code];
  return new TranslatedError(message, { extensions: { code: failure.code, ...extensionsOf(failure) } });
}

/** For resolvers: the value, or the failure thrown as the contract's GraphQL error. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  const { failure } = outcome;
  if (!isClientFailure(failure)) throw new InternalFailureError(`${failure.code}: ${failure.message}`);
  throw toGraphQLError(failure);
}

const clientErrorCodes = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_USER_INPUT",
  "BAD_REQUEST",
  "OPERATION_RESOLUTION_FAILURE",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
]);

/** Where errors worth a log line go: a bug (unexpected), or the database out of reach (unavailable). */
export interface ErrorReporters {
  unexpected: (error: unknown) => void;
  unavailable: (error: unknown) => void;
}

/**
 * Apollo's formatError: our translated failures pass through; request errors (parse,
 * validation, variable coercion) become BAD_USER_INPUT; database outages SERVICE_UNAVAILABLE;
 * anything else is reported and masked as INTERNAL_SERVER_ERROR.
 */
export function createErrorFormatter(report: ErrorReporters, unavailableRetryAfterSeconds: number) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const base = { message: formatted.message, locations: formatted.locations, path: formatted.path };
    if (original instanceof TranslatedError) {
      const { http: _http, ...extensions } = original.extensions;
      return { ...base, extensions };
    }
    if (isUnavailable(original)) {
      report.unavailable(original);
      return {
        ...base,
        message: defaultMessages.SERVICE_UNAVAILABLE,
        extensions: { code: "SERVICE_UNAVAILABLE", retryAfterSeconds: unavailableRetryAfterSeconds },
      };
    }
    const code = String(formatted.extensions?.code ?? "");
    if (clientErrorCodes.has(code) && original instanceof GraphQLError) {
      return { ...base, extensions: { code: "BAD_USER_INPUT" } };
    }
    report.unexpected(original);
    return { ...base, message: defaultMessages.INTERNAL_SERVER_ERROR, extensions: { code: "INTERNAL_SERVER_ERROR" } };
  };
}

/**
 * Sets the HTTP status the contract gives a code when it is the response's only kind of error,
 * and the Retry-After header whenever an error carries `retryAfterSeconds` (every 429 and 503,
 * and a 200 whose data is kept beside such an error).
 */
export const httpStatusPlugin: ApolloServerPlugin = {
  async requestDidStart() {
    return {
      async willSendResponse({ response, operation }) {
        if (response.body.kind !== "single") return;
        const result = response.body.singleResult;
        const errors = result.errors ?? [];
        const retryAfterSeconds = Math.max(0, ...errors.map((error) => Number(error.extensions?.retryAfterSeconds ?? 0)));
        if (retryAfterSeconds > 0) response.http.headers.set("retry-after", String(retryAfterSeconds));
        const codes = new Set(errors.map((error) => String(error.extensions?.code ?? "")));
        if (codes.size !== 1) return;
        const code = [...codes][0] as ErrorCode;
        const status = httpStatusByCode[code];
        if (status === undefined) return;
        // GraphQL over HTTP: a response that carries data is 2xx. During an outage a query's
        // partial data is not worth keeping, so it is dropped and the answer is a plain 503.
        // A mutation's data is kept (and the answer stays 200): fields that did commit must
        // not look failed, or a client retrying the whole document would apply them twice.
        const hasData = result.data !== null && result.data !== undefined;
        if (hasData && (code !== "SERVICE_UNAVAILABLE" || operation?.operation === "mutation")) return;
        if (hasData) result.data = null;
        response.http.status = status;
      },
    };
  },
};
