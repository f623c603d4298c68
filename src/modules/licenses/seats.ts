// Seat and certificate arithmetic, pure: whether a license has room for one more device, which
// devices a smaller number of seats leaves out, and how long a certificate runs.

/** Whether one more device fits. */
export function hasFreeSeat(seatedCount: number, maxDevices: number): boolean {
  return seatedCount < maxDevices;
}

/**
 * Whether a new device may also run offline: seated devices plus released ones still holding
 * an unexpired certificate stay within `offlineDevicesPerSeat` times the seats.
 */
export function hasFreeOfflineRoom(seatedCount: number, releasedStillOfflineCount: number, maxDevices: number, offlineDevicesPerSeat: number): boolean {
  return seatedCount + releasedStillOfflineCount < maxDevices * offlineDevicesPerSeat;
}

/**
 * The devices beyond the seats, given oldest first: the newest give their seats back first, so
 * the longest-standing devices keep working. Returned newest first.
 */
export function devicesBeyondSeats<Device>(devicesOldestFirst: readonly Device[], maxDevices: number): Device[] {
  return devicesOldestFirst.slice(Math.max(0, maxDevices)).reverse();
}

const millisecondsPerDay = 86_400_000;

/** A certificate's lifetime: shorter while a payment dispute is recent, so a charge-back cannot buy a long offline run. */
export function certificateLifetimeSeconds(
  lastDisputedAt: Date | null,
  now: Date,
  limits: { certificateTtlSeconds: number; disputedCertificateTtlSeconds: number; disputeMemoryDays: number },
): number {
  const disputedRecently = lastDisputedAt !== null && now.getTime() - lastDisputedAt.getTime() < limits.disputeMemoryDays * millisecondsPerDay;
  return disputedRecently ? limits.disputedCertificateTtlSeconds : limits.certificateTtlSeconds;
}
