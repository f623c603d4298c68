import type { Tier } from "../customers";

export type LicenseStatus = "ACTIVE" | "DEACTIVATED";
export type LicenseEventKind =
  | "ISSUED"
  | "DELIVERY_QUEUED"
  | "ACTIVATED"
  | "DEVICE_ACTIVATED"
  | "DEVICE_DEACTIVATED"
  | "DEACTIVATED"
  | "REACTIVATED";

export interface LicenseRecord {
  id: string;
  key: string;
  customerId: string;
  status: LicenseStatus;
  activatedAt: Date | null;
  deactivatedAt: Date | null;
  deactivationReason: string | null;
  createdAt: Date;
  /** The tier whose seats the license has (the owner's, kept in step). */
  tier: Tier;
  /** When it was last deactivated for a payment dispute. */
  lastDisputedAt: Date | null;
}

export interface DeviceRecord {
  id: string;
  licenseId: string;
  fingerprint: string;
  name: string | null;
  activatedAt: Date;
  lastSeenAt: Date;
  deactivatedAt: Date | null;
  /** Expiry of the last offline certificate: the device runs offline until then, deactivated or not. */
  certificateExpiresAt: Date | null;
}

export interface LicenseEventRecord {
  id: bigint;
  licenseId: string;
  kind: LicenseEventKind;
  actor: string;
  reason: string | null;
  deviceId: string | null;
  createdAt: Date;
}

export const licenseEmailJobKind = "license_email";

/** The reason a payment dispute deactivates a license with (billing), and what shortens certificates after. */
export const disputeReason = "dispute";
