// Keyset pagination over a monotonically increasing sequence column. Cursors are opaque to
// clients: base64url of "<kind>:<seq>", so a cursor of one list is refused by another.
import { badInput, succeed, type Outcome } from "./failures";

export interface PageRequest {
  first: number;
  afterSeq: bigint | undefined;
}

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

const cursorMaxLength = 64;

export function encodeCursor(kind: string, seq: bigint): string {
  return Buffer.from(`${kind}:${seq}`).toString("base64url");
}

export function pageRequest(
  kind: string,
  first: number,
  after: string | null | undefined,
  pageSizeMax: number,
): Outcome<PageRequest> {
  if (!Number.isSafeInteger(first) || first < 1 || first > pageSizeMax) {
    return badInput("first", `first must be between 1 and ${pageSizeMax}`);
  }
  if (after === null || after === undefined) return succeed({ first, afterSeq: undefined });
  const decoded = after.length <= cursorMaxLength ? Buffer.from(after, "base64url").toString("utf8") : "";
  const match = /^([a-z]+):(\d{1,19})$/.exec(decoded);
  if (!match || match[1] !== kind) return badInput("after", "after is not a cursor of this list");
  return succeed({ first, afterSeq: BigInt(match[2]!) });
}

/** Builds a page from up to first+1 rows fetched newest first: the extra row means more. */
export function toPage<T>(kind: string, rows: T[], first: number, seqOf: (row: T) => bigint): Page<T> {
  const nodes = rows.slice(0, first);
  const edges = nodes.map((node) => ({ cursor: encodeCursor(kind, seqOf(node)), node }));
  return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}
