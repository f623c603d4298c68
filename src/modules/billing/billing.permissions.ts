// Who may call the billing module's operations (read by its services and the matrix test).
import type { PermissionTable } from "../../platform/authorization";

export const billingPermissions = {
  "Query.stripeEvents": { access: "staff" },
  "Mutation.startCheckout": { access: "customer" },
  "Mutation.openBillingPortal": { access: "customer" },
  "Mutation.replayStripeEvent": { access: "staff" },
} as const satisfies PermissionTable;
