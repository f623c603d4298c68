// What the licenses module answers without changing anything.
import type { Caller } from "../../platform/auth";
import { Policy } from "../../platform/authorization";
import { fail, succeed, type Outcome } from "../../platform/failures";
import type { Page } from "../../platform/pagination";
import type { DeviceRecord, LicenseEventRecord, LicenseRecord } from "./license";
import { normaliseLicenseKey } from "./license-key";
import type { LicensesDependencies } from "./licenses-common";
import { licensesPermissions } from "./licenses.permissions";

const policy = new Policy(licensesPermissions);

export class LicensesReads {
  constructor(private readonly deps: LicensesDependencies) {}

  async licenseOf(customerId: string): Promise<LicenseRecord | null> {
    return (await this.deps.store.findByCustomer(this.deps.database, customerId)) ?? null;
  }

  async customerIdForKey(rawKey: string): Promise<string | undefined> {
    const key = normaliseLicenseKey(rawKey);
    return key ? (await this.deps.store.findByKey(this.deps.database, key))?.customerId : undefined;
  }

  seatedDevices(licenseId: string): Promise<DeviceRecord[]> {
    return this.deps.store.seatedDevices(this.deps.database, licenseId);
  }

  releasedDevicesStillOffline(licenseId: string): Promise<DeviceRecord[]> {
    return this.deps.store.releasedDevicesStillOffline(this.deps.database, licenseId, this.deps.now());
  }

  async auditTrail(caller: Caller, licenseId: string, first: number, after: string | null | undefined): Promise<Outcome<Page<LicenseEventRecord>>> {
    const denied = policy.check("License.auditTrail", caller);
    if (denied) return fail(denied);
    const page = this.deps.pager.request("license-event", licenseId, first, after);
    if (!page.ok) return page;
    const rows = await this.deps.store.events(this.deps.database, licenseId, page.value);
    return succeed(this.deps.pager.page("license-event", licenseId, rows, page.value, (row) => row.id));
  }
}
