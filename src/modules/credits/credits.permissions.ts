// Who may call the credits module's operations (read by its services and the matrix test).
import type { PermissionTable } from "../../platform/authorization";

export const creditsPermissions = {
  "Query.reservation": { access: "owner-or-staff", others: "null" },
  "Mutation.reserveCredits": { access: "owner-or-staff", others: "FORBIDDEN" },
  "Mutation.confirmReservation": { access: "owner-or-staff", others: "RESERVATION_NOT_FOUND" },
  "Mutation.releaseReservation": { access: "owner-or-staff", others: "RESERVATION_NOT_FOUND" },
  "Mutation.adjustCredits": { access: "staff" },
  "Mutation.setLowBalanceAlert": { access: "owner-or-staff", others: "FORBIDDEN" },
} as const satisfies PermissionTable;
