// Who may call the customers module's operations (read by its services and the matrix test).
import type { PermissionTable } from "../../platform/authorization";

export const customersPermissions = {
  "Query.me": { access: "signed-in" },
  "Query.customer": { access: "staff" },
  "Query.searchCustomers": { access: "staff" },
  "Mutation.createCustomer": { access: "staff" },
} as const satisfies PermissionTable;
