import type { Resolvers } from "../../generated/graphql";
import { unwrap } from "../../platform/errors";

export const licensesResolvers: Resolvers = {
  Query: {
    licenseSigningKeys: (_parent, _args, { services }) => services.licenses.signingKeys(),
  },
  Mutation: {
    issueLicense: async (_parent, { input }, { caller, services }) => unwrap(await services.licenses.issue(caller, input.customerId)),
    resendLicense: async (_parent, { input }, { caller, services }) => unwrap(await services.licenses.resend(caller, input.customerId)),
    activateLicense: async (_parent, { input }, { clientAddress, services }) =>
      unwrap(await services.licenses.activate(clientAddress, input.key, input.device)),
    deactivateLicense: async (_parent, { input }, { caller, services }) =>
      unwrap(await services.licenses.deactivate(caller, input.key, input.reason)),
    reactivateLicense: async (_parent, { input }, { caller, services }) => unwrap(await services.licenses.reactivate(caller, input.key)),
    deactivateDevice: async (_parent, { input }, { caller, services }) =>
      unwrap(await services.licenses.deactivateDevice(caller, input.deviceId)),
    checkOutLicenseCertificate: async (_parent, _args, { caller, services }) => unwrap(await services.licenses.checkOutCertificate(caller)),
  },
  Customer: {
    license: (customer, _args, { services }) => services.licenses.licenseOf(customer.id),
  },
  License: {
    maxDevices: (license, _args, { services }) => services.licenses.maxDevicesOf(license),
    devices: (license, _args, { services }) => services.licenses.seatedDevices(license.id),
    releasedDevicesStillOffline: (license, _args, { services }) => services.licenses.releasedDevicesStillOffline(license.id),
    auditTrail: async (license, { first, after }, { caller, services }) =>
      unwrap(await services.licenses.auditTrail(caller, license.id, first, after)),
  },
  LicenseEvent: {
    id: (event) => event.id.toString(),
  },
};
