// The licenses module's only door to the database: licenses, devices and the audit trail.
import { Prisma } from "../../generated/prisma/client";
import { z } from "zod";
import { assert } from "../../platform/assert";
import type { DatabaseClient, Transaction } from "../../platform/database";
import { column, selectRow, selectRows, execute } from "../../platform/rows";
import type { PageRequest } from "../../platform/pagination";
import type { Tier } from "../customers";
import type { DeviceRecord, LicenseEventKind, LicenseEventRecord, LicenseRecord } from "./license";

const licenseColumns = Prisma.sql`id, key, customer_id, status::text AS status, activated_at, deactivated_at,
  deactivation_reason, created_at, tier::text AS tier, last_disputed_at`;
const deviceColumns = Prisma.sql`id, license_id, fingerprint, name, activated_at, last_seen_at, deactivated_at, certificate_expires_at`;

const licenseRow = z
  .object({
    id: column.uuid,
    key: column.text,
    customer_id: column.uuid,
    status: z.enum(["ACTIVE", "DEACTIVATED"]),
    activated_at: column.timestamp.nullable(),
    deactivated_at: column.timestamp.nullable(),
    deactivation_reason: column.text.nullable(),
    created_at: column.timestamp,
    tier: z.enum(["STARTER", "PRO", "STUDIO"]),
    last_disputed_at: column.timestamp.nullable(),
  })
  .transform(
    (row): LicenseRecord => ({
      id: row.id,
      key: row.key,
      customerId: row.customer_id,
      status: row.status,
      activatedAt: row.activated_at,
      deactivatedAt: row.deactivated_at,
      deactivationReason: row.deactivation_reason,
      createdAt: row.created_at,
      tier: row.tier,
      lastDisputedAt: row.last_disputed_at,
    }),
  );

const deviceRow = z
  .object({
    id: column.uuid,
    license_id: column.uuid,
    fingerprint: column.text,
    name: column.text.nullable(),
    activated_at: column.timestamp,
    last_seen_at: column.timestamp,
    deactivated_at: column.timestamp.nullable(),
    certificate_expires_at: column.timestamp.nullable(),
  })
  .transform(
    (row): DeviceRecord => ({
      id: row.id,
      licenseId: row.license_id,
      fingerprint: row.fingerprint,
      name: row.name,
      activatedAt: row.activated_at,
      lastSeenAt: row.last_seen_at,
      deactivatedAt: row.deactivated_at,
      certificateExpiresAt: row.certificate_expires_at,
    }),
  );

const idRow = z.object({ id: column.uuid }).transform((row) => row.id);
const tokenOwnerRow = z.object({ device_id: column.uuid, customer_id: column.uuid }).transform((row) => ({ deviceId: row.device_id, customerId: row.customer_id }));

export interface NewLicenseEvent {
  licenseId: string;
  kind: LicenseEventKind;
  actor: string;
  reason: string | null;
  deviceId: string | null;
}

export class LicensesStore {
  findByKey(db: DatabaseClient, key: string): Promise<LicenseRecord | undefined> {
    return this.findOne(db, Prisma.sql`key = ${key}`);
  }

  findByCustomer(db: DatabaseClient, customerId: string): Promise<LicenseRecord | undefined> {
    return this.findOne(db, Prisma.sql`customer_id = ${customerId}::uuid`);
  }

  findById(db: DatabaseClient, licenseId: string): Promise<LicenseRecord | undefined> {
    return this.findOne(db, Prisma.sql`id = ${licenseId}::uuid`);
  }

  private async findOne(db: DatabaseClient, condition: Prisma.Sql): Promise<LicenseRecord | undefined> {
    return selectRow(db, "licenses.findOne", licenseRow, Prisma.sql`SELECT ${licenseColumns} FROM license WHERE ${condition}`);
  }

  /** Locks the license's row for the rest of the transaction. */
  async lock(tx: Transaction, licenseId: string): Promise<LicenseRecord | undefined> {
    await selectRows(tx, "licenses.lock", idRow, Prisma.sql`SELECT id FROM license WHERE id = ${licenseId}::uuid FOR UPDATE`);
    return this.findById(tx, licenseId);
  }

  async keyExists(tx: Transaction, key: string): Promise<boolean> {
    return (await selectRows(tx, "licenses.keyExists", idRow, Prisma.sql`SELECT id FROM license WHERE key = ${key}`)).length > 0;
  }

  async insert(tx: Transaction, customerId: string, key: string, tier: Tier): Promise<LicenseRecord> {
    const inserted = await selectRow(tx, "licenses.insert", licenseRow, Prisma.sql`
      INSERT INTO license (customer_id, key, tier) VALUES (${customerId}::uuid, ${key}, ${tier}::"Tier") RETURNING ${licenseColumns}`);
    assert(inserted, "INSERT ... RETURNING returned no row");
    return inserted;
  }

  async setTier(tx: Transaction, licenseId: string, tier: Tier): Promise<void> {
    await execute(tx, "licenses.setTier", Prisma.sql`UPDATE license SET tier = ${tier}::"Tier" WHERE id = ${licenseId}::uuid`);
  }

  async setActivatedAt(tx: Transaction, licenseId: string, activatedAt: Date): Promise<void> {
    await execute(tx, "licenses.setActivatedAt", Prisma.sql`UPDATE license SET activated_at = ${activatedAt} WHERE id = ${licenseId}::uuid AND activated_at IS NULL`);
  }

  async deactivate(tx: Transaction, licenseId: string, at: Date, reason: string, disputed: boolean): Promise<void> {
    await execute(tx, "licenses.deactivate", Prisma.sql`
      UPDATE license SET status = 'DEACTIVATED', deactivated_at = ${at}, deactivation_reason = ${reason},
        last_disputed_at = CASE WHEN ${disputed} THEN ${at} ELSE last_disputed_at END
      WHERE id = ${licenseId}::uuid`);
  }

  async reactivate(tx: Transaction, licenseId: string): Promise<void> {
    await execute(tx, "licenses.reactivate", Prisma.sql`
      UPDATE license SET status = 'ACTIVE', deactivated_at = NULL, deactivation_reason = NULL WHERE id = ${licenseId}::uuid`);
  }

  /** Devices currently holding a seat, oldest first. */
  async seatedDevices(db: DatabaseClient, licenseId: string): Promise<DeviceRecord[]> {
    return selectRows(db, "licenses.seatedDevices", deviceRow, Prisma.sql`
      SELECT ${deviceColumns} FROM device WHERE license_id = ${licenseId}::uuid AND deactivated_at IS NULL
      ORDER BY activated_at, id`);
  }

  async findDevice(db: DatabaseClient, deviceId: string): Promise<DeviceRecord | undefined> {
    return selectRow(db, "licenses.findDevice", deviceRow, Prisma.sql`SELECT ${deviceColumns} FROM device WHERE id = ${deviceId}::uuid`);
  }

  async seatDevice(tx: Transaction, licenseId: string, fingerprint: string, name: string | null, tokenHash: string, now: Date): Promise<DeviceRecord> {
    const seated = await selectRow(tx, "licenses.seatDevice", deviceRow, Prisma.sql`
      INSERT INTO device (license_id, fingerprint, name, token_hash, activated_at, last_seen_at)
      VALUES (${licenseId}::uuid, ${fingerprint}, ${name}, ${tokenHash}, ${now}, ${now})
      RETURNING ${deviceColumns}`);
    assert(seated, "INSERT ... RETURNING returned no row");
    return seated;
  }

  /** The same device again: a new token replaces the old one, and it is seen now. */
  async refreshDevice(tx: Transaction, deviceId: string, name: string | null, tokenHash: string, now: Date): Promise<DeviceRecord> {
    const refreshed = await selectRow(tx, "licenses.refreshDevice", deviceRow, Prisma.sql`
      UPDATE device SET token_hash = ${tokenHash}, last_seen_at = ${now}, name = COALESCE(${name}, name)
      WHERE id = ${deviceId}::uuid RETURNING ${deviceColumns}`);
    assert(refreshed, `device ${deviceId} vanished inside its license's transaction`);
    return refreshed;
  }

  /** A certificate was issued to the device: it was seen now, and runs offline until `expiresAt`. */
  async recordCertificate(tx: Transaction, deviceId: string, expiresAt: Date, now: Date): Promise<void> {
    // Never earlier than a certificate already out there (a shorter one after a dispute).
    await execute(tx, "licenses.recordCertificate", Prisma.sql`
      UPDATE device SET certificate_expires_at = GREATEST(certificate_expires_at, ${expiresAt}), last_seen_at = ${now}
      WHERE id = ${deviceId}::uuid`);
  }

  /** Devices holding a seat, and those that gave it back but hold an unexpired certificate, oldest first. */
  async devicesSeatedOrCertified(db: DatabaseClient, licenseId: string, now: Date): Promise<DeviceRecord[]> {
    return selectRows(db, "licenses.devicesSeatedOrCertified", deviceRow, Prisma.sql`
      SELECT ${deviceColumns} FROM device
      WHERE license_id = ${licenseId}::uuid AND (deactivated_at IS NULL OR certificate_expires_at > ${now})
      ORDER BY activated_at, id`);
  }

  /** Devices that gave their seat back but still hold an unexpired offline certificate. */
  async releasedDevicesStillOffline(db: DatabaseClient, licenseId: string, now: Date): Promise<DeviceRecord[]> {
    return selectRows(db, "licenses.releasedDevicesStillOffline", deviceRow, Prisma.sql`
      SELECT ${deviceColumns} FROM device
      WHERE license_id = ${licenseId}::uuid AND deactivated_at IS NOT NULL AND certificate_expires_at > ${now}
      ORDER BY certificate_expires_at, id`);
  }

  async releaseDevice(tx: Transaction, deviceId: string, now: Date): Promise<void> {
    await execute(tx, "licenses.releaseDevice", Prisma.sql`UPDATE device SET deactivated_at = ${now}, token_hash = NULL WHERE id = ${deviceId}::uuid`);
  }

  async revokeTokens(tx: Transaction, licenseId: string): Promise<void> {
    await execute(tx, "licenses.revokeTokens", Prisma.sql`UPDATE device SET token_hash = NULL WHERE license_id = ${licenseId}::uuid AND token_hash IS NOT NULL`);
  }

  /** The device and customer a token belongs to, while the device holds a seat on an ACTIVE license. */
  async deviceByTokenHash(db: DatabaseClient, tokenHash: string): Promise<{ deviceId: string; customerId: string } | undefined> {
    return selectRow(db, "licenses.deviceByTokenHash", tokenOwnerRow, Prisma.sql`
      SELECT d.id AS device_id, l.customer_id FROM device d JOIN license l ON l.id = d.license_id
      WHERE d.token_hash = ${tokenHash} AND d.deactivated_at IS NULL AND l.status = 'ACTIVE'`);
  }

  async appendEvent(tx: Transaction, event: NewLicenseEvent): Promise<void> {
    await execute(tx, "licenses.appendEvent", Prisma.sql`
      INSERT INTO license_event (license_id, kind, actor, reason, device_id)
      VALUES (${event.licenseId}::uuid, ${event.kind}::"LicenseEventKind", ${event.actor}, ${event.reason}, ${event.deviceId}::uuid)`);
  }

  async events(db: DatabaseClient, licenseId: string, page: PageRequest): Promise<LicenseEventRecord[]> {
    return db.licenseEvent.findMany({
      where: { licenseId, ...(page.afterSeq === undefined ? {} : { id: { lt: page.afterSeq } }) },
      orderBy: { id: "desc" },
      take: page.first + 1,
    });
  }
}
