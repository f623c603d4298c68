// The customers module's front door: accounts (email, Stripe link, tier) and the support search.
// Other modules read customers through CustomerDirectory; only customers.store.ts writes them.
import fs from "node:fs";
import path from "node:path";
import { CustomersService, type CustomersDependencies } from "./customers.service";
import { CustomersStore } from "./customers.store";
import type { CustomerDirectory } from "./customer";

export { customersResolvers } from "./customers.resolvers";
export { customersPermissions } from "./customers.permissions";
export type { CustomerBalances, CustomersService, LicenseOwnerLookup } from "./customers.service";
export type { CustomerDirectory, CustomerRecord, Tier } from "./customer";

export const customersTypeDefs = fs.readFileSync(path.join(__dirname, "schema.graphql"), "utf8");

/** Reads customers for other modules, inside their transactions. */
export function createCustomerDirectory(): CustomerDirectory {
  return new CustomersStore();
}

export function createCustomersService(deps: Omit<CustomersDependencies, "store">): CustomersService {
  return new CustomersService({ ...deps, store: new CustomersStore() });
}
