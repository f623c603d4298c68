// The licenses module's front door: license keys, activation, device seats and their tokens.
// It owns the license, device and license_event tables; only licenses.store.ts writes them.
import { Router } from "express";
import fs from "node:fs";
import path from "node:path";
import type { OutboxHandler } from "../../platform/outbox/outbox.worker";
import { PermanentJobError } from "../../platform/outbox/outbox.worker";
import { licenseEmailJobKind } from "./license";
import { LicensesService, type LicensesDependencies } from "./licenses.service";
import { LicenseSigner } from "./license-signer";
import { LicensesStore } from "./licenses.store";

export { licensesResolvers } from "./licenses.resolvers";
export { licensesPermissions } from "./licenses.permissions";
export { licensesInvariants } from "./licenses.audit";
export type { ActivationResult, IssueResult, LicensesService } from "./licenses.service";
export { disputeReason, type LicenseRecord } from "./license";

export { readOrCreateDevelopmentSigningKey } from "./license-signer";

const publishedKeysMaxAgeSeconds = 300;

export const licensesTypeDefs = fs.readFileSync(path.join(__dirname, "schema.graphql"), "utf8");

export function createLicensesService(deps: Omit<LicensesDependencies, "store" | "signer">, signingKeyPems: readonly string[]): LicensesService {
  const signer = new LicenseSigner(signingKeyPems, deps.config.licenses.certificateIssuer);
  return new LicensesService({ ...deps, store: new LicensesStore(), signer });
}

/** GET /.well-known/license-keys.json: the public keys that sign license certificates, as a JWKS. */
export function licenseKeysRouter(licenses: LicensesService): Router {
  const router = Router();
  router.get("/.well-known/license-keys.json", async (_request, response) => {
    const keys = (await licenses.signingKeys()).map((key) => JSON.parse(key.jwk) as unknown);
    // Cached briefly: a plugin meeting an unknown kid fetches again (see the README).
    response.setHeader("Cache-Control", `public, max-age=${publishedKeysMaxAgeSeconds}`);
    response.json({ keys });
  });
  return router;
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
