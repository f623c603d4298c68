import type { Tier } from "../../config";

export interface CustomerRecord {
  id: string;
  seq: bigint;
  email: string | null;
  stripeCustomerId: string | null;
  tier: Tier;
  secondsRemaining: number;
  secondsReserved: number;
  createdAt: Date;
}
