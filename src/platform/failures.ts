// Expected failures are values: services return them, one translator (errors.ts) turns them
// into the contract's error codes. Only bugs and infrastructure failures are thrown.

export type Failure =
  | { code: "UNAUTHENTICATED"; message?: string }
  | { code: "FORBIDDEN"; message?: string }
  | { code: "BAD_USER_INPUT"; message: string; field?: string }
  | { code: "CUSTOMER_NOT_FOUND" }
  | { code: "INSUFFICIENT_CREDITS"; secondsRemaining: number }
  | { code: "RESERVATION_NOT_FOUND" }
  | { code: "RESERVATION_SETTLED"; status: string }
  | { code: "INVALID_LICENSE_KEY" }
  | { code: "LICENSE_NOT_FOUND" }
  | { code: "LICENSE_DEACTIVATED" }
  | { code: "DEVICE_LIMIT_REACHED"; maxDevices: number }
  | { code: "DEVICE_NOT_FOUND" }
  | { code: "STRIPE_EVENT_NOT_FOUND" }
  | { code: "TOO_MANY_REQUESTS"; retryAfterSeconds: number }
  | { code: "PAYMENT_PROVIDER_ERROR"; message: string }
  // Internal: a Stripe event this service cannot apply (unknown price, no customer...). It is
  // recorded on the event and answered 500 to Stripe; a GraphQL client never sees it.
  | { code: "STRIPE_EVENT_UNPROCESSABLE"; message: string };

/** Failures that stay inside the service: the translator treats reaching a client as a bug. */
type InternalFailureCode = "STRIPE_EVENT_UNPROCESSABLE";
export type ClientFailure = Exclude<Failure, { code: InternalFailureCode }>;

export function isClientFailure(failure: Failure): failure is ClientFailure {
  return failure.code !== "STRIPE_EVENT_UNPROCESSABLE";
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; failure: Failure };

export const succeed = <T>(value: T): Outcome<T> => ({ ok: true, value });
export const fail = (failure: Failure): { ok: false; failure: Failure } => ({ ok: false, failure });

export function isFailedOutcome(value: unknown): value is { ok: false; failure: Failure } {
  if (value === null || typeof value !== "object") return false;
  const candidate = value as { ok?: unknown; failure?: unknown };
  return candidate.ok === false && typeof candidate.failure === "object" && candidate.failure !== null;
}

export const badInput = (field: string, message: string) => fail({ code: "BAD_USER_INPUT", field, message });

/** Thrown (not returned): the database is unreachable or a transaction kept conflicting. */
export class ServiceUnavailableError extends Error {
  override readonly name = "ServiceUnavailableError";
}
