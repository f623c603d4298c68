// Who may do what: each module declares its operations' permissions in one table
// (<module>.permissions.ts), read by the one check here, and by the authorization matrix test,
// which derives every caller's expected answer from the same tables.
import type { Caller } from "./auth";
import type { ClientFailure, Failure } from "./failures";

/**
 * anyone: no token needed (the license key is the credential).
 * signed-in: any valid token; the operation reads the caller's own account.
 * staff: staff tokens only.
 * customer: customer tokens only (buying is the account holder's act, not a device's or staff's).
 * device: device tokens only (what a plugin asks for itself, such as its offline certificate).
 * owner-or-staff: staff on any account; customer and device tokens on their own. What another
 *   account's token gets is `others`: FORBIDDEN, a not-found code (the object is as hidden as
 *   one that does not exist), or "null" (a nullable query answers null).
 */
export type Permission =
  | { access: "anyone" | "signed-in" | "staff" | "customer" | "device" }
  | { access: "owner-or-staff"; others: "FORBIDDEN" | "null" | Exclude<ClientFailure["code"], "FORBIDDEN"> };

/** The operations a module exposes (Type.field of the schema), each with its permission. */
export type PermissionTable = Readonly<Record<string, Permission>>;

const isSignedIn = (caller: Caller) => caller.kind === "staff" || caller.kind === "customer" || caller.kind === "device";

const unauthenticated = (caller: Caller): Failure => ({
  code: "UNAUTHENTICATED",
  message: caller.kind === "rejected" ? `Invalid token: ${caller.reason}` : "A bearer token is required",
});

const forbiddenMessages: Record<Permission["access"], string> = {
  anyone: "",
  "signed-in": "",
  staff: "Staff only",
  customer: "Only a customer can do this, for their own account",
  device: "Only a device token can do this, for its own device",
  "owner-or-staff": "Not your account",
};

export class Policy<Operation extends string> {
  constructor(private readonly table: Readonly<Record<Operation, Permission>>) {}

  /** Whether the caller may call the operation at all: before anything is looked up. */
  check(operation: Operation, caller: Caller): Failure | undefined {
    const { access } = this.table[operation];
    if (access === "anyone") return undefined;
    if (!isSignedIn(caller)) return unauthenticated(caller);
    const wrongKind =
      (access === "staff" && caller.kind !== "staff") ||
      (access === "customer" && caller.kind !== "customer") ||
      (access === "device" && caller.kind !== "device");
    if (wrongKind) {
      return { code: "FORBIDDEN", message: forbiddenMessages[access] };
    }
    return undefined;
  }

  /**
   * Whether the caller may act on an object of this account (owner-or-staff operations):
   * undefined when allowed, "hidden" when the answer is null, else the failure to return.
   */
  checkOwner(operation: Operation, caller: Caller, ownerCustomerId: string): Failure | "hidden" | undefined {
    const denied = this.check(operation, caller);
    if (denied) return denied;
    const permission = this.table[operation];
    if (permission.access !== "owner-or-staff" || caller.kind === "staff") return undefined;
    if ((caller.kind === "customer" || caller.kind === "device") && caller.customerId === ownerCustomerId) return undefined;
    if (permission.others === "null") return "hidden";
    if (permission.others === "FORBIDDEN") return { code: "FORBIDDEN", message: forbiddenMessages["owner-or-staff"] };
    return { code: permission.others } as Failure;
  }
}

/** The account the caller's own-account operations apply to; staff must name one. */
export function ownCustomerId(caller: Caller): string | undefined {
  return caller.kind === "customer" || caller.kind === "device" ? caller.customerId : undefined;
}
