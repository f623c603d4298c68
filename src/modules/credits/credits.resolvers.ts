import type { Resolvers } from "../../generated/graphql";
import { unwrap } from "../../platform/errors";
import { hoursFromSeconds } from "./balance";

export const creditsResolvers: Resolvers = {
  Query: {
    reservation: async (_parent, { id }, { caller, services }) => unwrap(await services.credits.findReservation(caller, id)),
  },
  Mutation: {
    reserveCredits: async (_parent, { input }, { caller, services }) => unwrap(await services.credits.reserve(caller, input)),
    confirmReservation: async (_parent, { input }, { caller, services }) =>
      unwrap(await services.credits.confirm(caller, input.reservationId, input.actualSeconds)),
    releaseReservation: async (_parent, { input }, { caller, services }) =>
      unwrap(await services.credits.release(caller, input.reservationId, input.reason)),
    setLowBalanceAlert: async (_parent, { input }, { caller, services }) =>
      unwrap(await services.credits.setLowBalanceAlert(caller, input.customerId, input.thresholdSeconds ?? null)),
    adjustCredits: async (_parent, { input }, { caller, services }) =>
      unwrap(await services.credits.adjust(caller, input)),
  },
  Customer: {
    balance: (customer, _args, { services }) => services.credits.balanceOf(customer.id),
    reservations: async (customer, { status, first, after }, { services }) =>
      unwrap(await services.credits.reservationsOf(customer.id, status, first, after)),
    lowBalanceThresholdSeconds: (customer, _args, { services }) => services.credits.lowBalanceThresholdOf(customer.id),
    usage: async (customer, { from, to, granularity, byEndpoint }, { services }) =>
      unwrap(await services.credits.usage(customer.id, from, to, granularity ?? "DAY", byEndpoint ?? false)),
    ledger: async (customer, { first, after }, { services }) =>
      unwrap(await services.credits.ledgerOf(customer.id, first, after)),
    grants: async (customer, { includeSpent, first, after }, { services }) =>
      unwrap(await services.credits.grantsOf(customer.id, includeSpent ?? false, first, after)),
  },
  ReserveCreditsPayload: {
    customer: (payload, _args, { services }) => services.customers.owner(payload.reservation.customerId),
  },
  SettleReservationPayload: {
    customer: (payload, _args, { services }) => services.customers.owner(payload.reservation.customerId),
  },
  CreditBalance: {
    hoursRemaining: (balance) => hoursFromSeconds(balance.secondsRemaining),
    nextExpiry: (balance, _args, { services }) => services.credits.nextExpiryOf(balance.customerId),
  },
  LedgerEntry: {
    id: (entry) => entry.id.toString(),
  },
};
