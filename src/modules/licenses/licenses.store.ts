// The licenses module's only door to the database: licenses, devices and the audit trail.
import { Prisma } from "../../generated/prisma/client";
import type { DatabaseClient, Transaction } from "../../platform/database";
import type { PageRequest } from "../../platform/pagination";
import type { DeviceRecord, LicenseEventKind, LicenseEventRecord, LicenseRecord, LicenseStatus } from "./license";

interface LicenseRow {
  id: string;
  key: string;
  customer_id: string;
  status: LicenseStatus;
  activated_at: Date | null;
  deactivated_at: Date | null;
  deactivation_reason: string | null;
  created_at: Date;
}

interface DeviceRow {
  id: string;
  license_id: string;
  fingerprint: string;
  name: string | null;
  activated_at: Date;
  last_seen_at: Date;
  deactivated_at: Date | null;
}

const licenseColumns = Prisma.sql`l.id, l.key, l.customer_id, l.status::text AS status, l.activated_at, l.deactivated_at,
  l.deactivation_reason, l.created_at`;
const deviceColumns = Prisma.sql`id, license_id, fingerprint, name, activated_at, last_seen_at, deactivated_at`;

const toLicense = (row: LicenseRow): LicenseRecord => ({
  id: row.id,
  key: row.key,
  customerId: row.customer_id,
  status: row.status,
  activatedAt: row.activated_at,
  deactivatedAt: row.deactivated_at,
  deactivationReason: row.deactivation_reason,
  createdAt: row.created_at,
});

const toDevice = (row: DeviceRow): DeviceRecord => ({
  id: row.id,
  licenseId: row.license_id,
  fingerprint: row.fingerprint,
  name: row.name,
  activatedAt: row.activated_at,
  lastSeenAt: row.last_seen_at,
  deactivatedAt: row.deactivated_at,
});

export interface NewLicenseEvent {
  licenseId: string;
  kind: LicenseEventKind;
  actor: string;
  reason: string | null;
  deviceId: string | null;
}

export class LicensesStore {
  findByKey(db: DatabaseClient, key: string): Promise<LicenseRecord | undefined> {
    return this.findOne(db, Prisma.sql`l.key = ${key}`);
  }

  findByCustomer(db: DatabaseClient, customerId: string): Promise<LicenseRecord | undefined> {
    return this.findOne(db, Prisma.sql`l.customer_id = ${customerId}::uuid`);
  }

  findById(db: DatabaseClient, licenseId: string): Promise<LicenseRecord | undefined> {
    return this.findOne(db, Prisma.sql`l.id = ${licenseId}::uuid`);
  }

  private async findOne(db: DatabaseClient, condition: Prisma.Sql): Promise<LicenseRecord | undefined> {
    const rows = await db.$queryRaw<LicenseRow[]>`
      SELECT ${licenseColumns} FROM license l WHERE ${condition}`;
    return rows[0] ? toLicense(rows[0]) : undefined;
  }

  /** Locks the license's row for the rest of the transaction. */
  async lock(tx: Transaction, licenseId: string): Promise<LicenseRecord | undefined> {
    await tx.$queryRaw`SELECT id FROM license WHERE id = ${licenseId}::uuid FOR UPDATE`;
    return this.findById(tx, licenseId);
  }

  async keyExists(tx: Transaction, key: string): Promise<boolean> {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM license WHERE key = ${key}`;
    return rows.length > 0;
  }

  async insert(tx: Transaction, customerId: string, key: string): Promise<LicenseRecord> {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO license (customer_id, key) VALUES (${customerId}::uuid, ${key}) RETURNING id`;
    return (await this.findById(tx, rows[0]!.id))!;
  }

  async setActivatedAt(tx: Transaction, licenseId: string, activatedAt: Date): Promise<void> {
    await tx.$executeRaw`UPDATE license SET activated_at = ${activatedAt} WHERE id = ${licenseId}::uuid AND activated_at IS NULL`;
  }

  async deactivate(tx: Transaction, licenseId: string, at: Date, reason: string): Promise<void> {
    await tx.$executeRaw`
      UPDATE license SET status = 'DEACTIVATED', deactivated_at = ${at}, deactivation_reason = ${reason}
      WHERE id = ${licenseId}::uuid`;
  }

  async reactivate(tx: Transaction, licenseId: string): Promise<void> {
    await tx.$executeRaw`
      UPDATE license SET status = 'ACTIVE', deactivated_at = NULL, deactivation_reason = NULL WHERE id = ${licenseId}::uuid`;
  }

  /** Devices currently holding a seat, oldest first. */
  async seatedDevices(db: DatabaseClient, licenseId: string): Promise<DeviceRecord[]> {
    const rows = await db.$queryRaw<DeviceRow[]>`
      SELECT ${deviceColumns} FROM device WHERE license_id = ${licenseId}::uuid AND deactivated_at IS NULL
      ORDER BY activated_at, id`;
    return rows.map(toDevice);
  }

  async findDevice(db: DatabaseClient, deviceId: string): Promise<DeviceRecord | undefined> {
    const rows = await db.$queryRaw<DeviceRow[]>`SELECT ${deviceColumns} FROM device WHERE id = ${deviceId}::uuid`;
    return rows[0] ? toDevice(rows[0]) : undefined;
  }

  async seatDevice(tx: Transaction, licenseId: string, fingerprint: string, name: string | null, tokenHash: string, now: Date): Promise<DeviceRecord> {
    const rows = await tx.$queryRaw<DeviceRow[]>`
      INSERT INTO device (license_id, fingerprint, name, token_hash, activated_at, last_seen_at)
      VALUES (${licenseId}::uuid, ${fingerprint}, ${name}, ${tokenHash}, ${now}, ${now})
      RETURNING ${deviceColumns}`;
    return toDevice(rows[0]!);
  }

  /** The same device again: a new token replaces the old one, and it is seen now. */
  async refreshDevice(tx: Transaction, deviceId: string, name: string | null, tokenHash: string, now: Date): Promise<DeviceRecord> {
    const rows = await tx.$queryRaw<DeviceRow[]>`
      UPDATE device SET token_hash = ${tokenHash}, last_seen_at = ${now}, name = COALESCE(${name}, name)
      WHERE id = ${deviceId}::uuid RETURNING ${deviceColumns}`;
    return toDevice(rows[0]!);
  }

  async releaseDevice(tx: Transaction, deviceId: string, now: Date): Promise<void> {
    await tx.$executeRaw`UPDATE device SET deactivated_at = ${now}, token_hash = NULL WHERE id = ${deviceId}::uuid`;
  }

  async revokeTokens(tx: Transaction, licenseId: string): Promise<void> {
    await tx.$executeRaw`UPDATE device SET token_hash = NULL WHERE license_id = ${licenseId}::uuid AND token_hash IS NOT NULL`;
  }

  /** The device and customer a token belongs to, while the device holds a seat on an ACTIVE license. */
  async deviceByTokenHash(db: DatabaseClient, tokenHash: string): Promise<{ deviceId: string; customerId: string } | undefined> {
    const rows = await db.$queryRaw<{ device_id: string; customer_id: string }[]>`
      SELECT d.id AS device_id, l.customer_id FROM device d JOIN license l ON l.id = d.license_id
      WHERE d.token_hash = ${tokenHash} AND d.deactivated_at IS NULL AND l.status = 'ACTIVE'`;
    return rows[0] ? { deviceId: rows[0].device_id, customerId: rows[0].customer_id } : undefined;
  }

  async appendEvent(tx: Transaction, event: NewLicenseEvent): Promise<void> {
    await tx.$executeRaw`
      INSERT INTO license_event (license_id, kind, actor, reason, device_id)
      VALUES (${event.licenseId}::uuid, ${event.kind}::"LicenseEventKind", ${event.actor}, ${event.reason}, ${event.deviceId}::uuid)`;
  }

  async events(db: DatabaseClient, licenseId: string, page: PageRequest): Promise<LicenseEventRecord[]> {
    return db.licenseEvent.findMany({
      where: { licenseId, ...(page.afterSeq === undefined ? {} : { id: { lt: page.afterSeq } }) },
      orderBy: { id: "desc" },
      take: page.first + 1,
    });
  }
}
