export type LedgerEntryKind = "GRANT" | "RESERVE" | "CONFIRM" | "RELEASE" | "EXPIRE" | "ADJUSTMENT" | "REFUND";

export interface LedgerEntryRecord {
  id: bigint;
  customerId: string;
  kind: LedgerEntryKind;
  deltaSeconds: number;
  balanceAfter: number;
  reservationId: string | null;
  note: string | null;
  actor: string;
  createdAt: Date;
}

export type NewLedgerEntry = Omit<LedgerEntryRecord, "id" | "createdAt">;
