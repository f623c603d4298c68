// The licenses module's front door: license keys, activation, device seats and their tokens.
// It owns the license, device and license_event tables; only licenses.store.ts writes them.
import fs from "node:fs";
import path from "node:path";
import type { OutboxHandler } from "../../platform/outbox/outbox.worker";
import { PermanentJobError } from "../../platform/outbox/outbox.worker";
import { licenseEmailJobKind } from "./license";
import { LicensesService, type LicensesDependencies } from "./licenses.service";
import { LicensesStore } from "./licenses.store";

export { licensesResolvers } from "./licenses.resolvers";
export { licensesPermissions } from "./licenses.permissions";
export { licensesInvariants } from "./licenses.audit";
export type { ActivationResult, IssueResult, LicensesService } from "./licenses.service";
export type { LicenseRecord } from "./license";

export const licensesTypeDefs = fs.readFileSync(path.join(__dirname, "schema.graphql"), "utf8");

export function createLicensesService(deps: Omit<LicensesDependencies, "store">): LicensesService {
  return new LicensesService({ ...deps, store: new LicensesStore() });
}

/** The outbox jobs this module queues, by kind: mailing a license key. */
export function licensesOutboxJobs(licenses: LicensesService): Record<string, OutboxHandler> {
  return {
    [licenseEmailJobKind]: async (job) => {
      const licenseId = job.payload.licenseId;
      if (typeof licenseId !== "string") throw new PermanentJobError("license email job without licenseId");
      await licenses.deliverKey(licenseId);
    },
  };
}
