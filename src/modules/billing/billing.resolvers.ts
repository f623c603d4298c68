import type { Resolvers } from "../../generated/graphql";
import { unwrap } from "../../platform/errors";

export const billingResolvers: Resolvers = {
  Query: {
    stripeEvents: async (_parent, { status, first }, { caller, services }) =>
      unwrap(await services.webhooks.recent(caller, status, first)),
  },
  Mutation: {
    startCheckout: async (_parent, { input }, { caller, services }) => unwrap(await services.checkout.start(caller, input)),
    openBillingPortal: async (_parent, { input }, { caller, services }) => unwrap(await services.checkout.billingPortal(caller, input.returnUrl)),
    replayStripeEvent: async (_parent, { id }, { caller, services }) => unwrap(await services.webhooks.replay(caller, id)),
  },
  StripeEvent: {
    stripeCreatedAt: (event) => event.stripeCreated,
  },
};
