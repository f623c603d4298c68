// Who may do what, apart from the services that do it. Each check returns the failure to
// report, or undefined when the caller may go ahead.
import type { Caller } from "./auth";
import type { Failure } from "./failures";

const unauthenticated = (caller: Caller): Failure => ({
  code: "UNAUTHENTICATED",
  message: caller.kind === "rejected" ? `Invalid token: ${caller.reason}` : "A bearer token is required",
});

const isSignedIn = (caller: Caller) =>
  caller.kind === "staff" || caller.kind === "customer" || caller.kind === "device";

export function requireStaff(caller: Caller): Failure | undefined {
  if (!isSignedIn(caller)) return unauthenticated(caller);
  if (caller.kind !== "staff") return { code: "FORBIDDEN", message: "Staff only" };
  return undefined;
}

export function requireSignedIn(caller: Caller): Failure | undefined {
  return isSignedIn(caller) ? undefined : unauthenticated(caller);
}

/** Customer and device tokens act on their own account only; staff on any. */
export function requireOwnerOrStaff(caller: Caller, customerId: string): Failure | undefined {
  if (!isSignedIn(caller)) return unauthenticated(caller);
  if (caller.kind === "staff") return undefined;
  if ((caller.kind === "customer" || caller.kind === "device") && caller.customerId === customerId) return undefined;
  return { code: "FORBIDDEN", message: "Not your account" };
}

/** The account the caller's own-account operations apply to; staff must name one. */
export function ownCustomerId(caller: Caller): string | undefined {
  return caller.kind === "customer" || caller.kind === "device" ? caller.customerId : undefined;
}
