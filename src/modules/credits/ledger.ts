export type LedgerEntryKind = "GRANT" | "RESERVE" | "CONFIRM" | "RELEASE" | "EXPIRE" | "ADJUSTMENT" | "REFUND" | "GRANT_EXPIRED";

export interface LedgerEntryRecord {
  id: bigint;
  customerId: string;
  kind: LedgerEntryKind;
  deltaSeconds: number;
  balanceAfter: number;
  reservationId: string | null;
  /** The grant whose seconds it moved; null when it moved none, or before grants existed. */
  grantId: string | null;
  note: string | null;
  actor: string;
  createdAt: Date;
}

export type NewLedgerEntry = Omit<LedgerEntryRecord, "id" | "createdAt">;
