// Who may call the licenses module's operations (read by its services and the matrix test).
import type { PermissionTable } from "../../platform/authorization";

export const licensesPermissions = {
  "Mutation.issueLicense": { access: "staff" },
  "Mutation.resendLicense": { access: "owner-or-staff", others: "FORBIDDEN" },
  "Mutation.activateLicense": { access: "anyone" },
  "Mutation.deactivateLicense": { access: "staff" },
  "Mutation.reactivateLicense": { access: "staff" },
  "Mutation.deactivateDevice": { access: "owner-or-staff", others: "DEVICE_NOT_FOUND" },
  "Mutation.checkOutLicenseCertificate": { access: "device" },
  "Query.licenseSigningKeys": { access: "anyone" },
  "License.auditTrail": { access: "staff" },
} as const satisfies PermissionTable;
