import type { Resolvers } from "../../generated/graphql";
import { unwrap } from "../../platform/errors";

export const customersResolvers: Resolvers = {
  Query: {
    me: async (_parent, _args, { caller, services }) => unwrap(await services.customers.me(caller)),
    customer: async (_parent, { id }, { caller, services }) => unwrap(await services.customers.findForStaff(caller, id)),
    searchCustomers: async (_parent, { query, first, after }, { caller, services }) =>
      unwrap(await services.customers.search(caller, query, first, after)),
  },
  Mutation: {
    createCustomer: async (_parent, { input }, { caller, services }) => unwrap(await services.customers.create(caller, input)),
  },
};
