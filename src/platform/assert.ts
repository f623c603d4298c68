// Invariant checks: a violation is a bug, never a user error, so it throws.
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}

export function assertSeconds(value: number, name: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, `${name} must be a non-negative integer of seconds, got ${value}`);
}
