import type { Resolvers } from "../../generated/graphql";
import { toGraphQLError } from "../../platform/errors";

const notYet = (): never => {
  throw toGraphQLError({ code: "NOT_AVAILABLE_YET", message: "License operations are not available yet" });
};

export const licensesResolvers: Resolvers = {
  Mutation: {
    issueLicense: notYet,
    resendLicense: notYet,
    activateLicense: notYet,
    deactivateLicense: notYet,
    reactivateLicense: notYet,
    deactivateDevice: notYet,
  },
  Customer: {
    license: () => null,
  },
};
