// Keyset pagination over a monotonically increasing sequence column, forward only (first/after).
// Cursors are opaque: the list, its scope (whose ledger, which search) and the position as a
// fixed 8 bytes, sealed with AES-256-GCM. A client can neither read a sequence number (nor its
// size: every cursor of a list is as long) nor forge a position, and a cursor is refused by any
// other list or scope. The nonce is derived from the text (SIV-like), so the same position
// always gets the same cursor.
import crypto from "node:crypto";
import { badInput, succeed, type Outcome } from "./failures";

export interface PageRequest {
  first: number;
  afterSeq: bigint | undefined;
}

export interface PageInfo {
  hasNextPage: boolean;
  /** Forward paging knows one thing before the page: the row its `after` cursor named. */
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: PageInfo;
}

const nonceBytes = 12;
const tagBytes = 16;
const cursorMaxLength = 128;

/** A short digest of the scope, so a cursor stays small however long the scope (a search text). */
function scopeDigest(scope: string): string {
  return crypto.createHash("sha256").update(scope).digest("base64url").slice(0, 16);
}

export class Pager {
  private readonly encryptionKey: Buffer;
  private readonly nonceKey: Buffer;

  /** `secret`: at least 32 bytes; two keys are derived from it, one to seal, one for nonces. */
  constructor(secret: string, readonly pageSizeMax: number) {
    this.encryptionKey = Buffer.from(crypto.hkdfSync("sha256", secret, "splice-cursor", "seal", 32));
    this.nonceKey = Buffer.from(crypto.hkdfSync("sha256", secret, "splice-cursor", "nonce", 32));
  }

  encodeCursor(list: string, scope: string, seq: bigint): string {
    const position = Buffer.alloc(8);
    position.writeBigUInt64BE(seq);
    const text = Buffer.concat([position, Buffer.from(`${list}:${scopeDigest(scope)}`)]);
    const nonce = crypto.createHmac("sha256", this.nonceKey).update(text).digest().subarray(0, nonceBytes);
    const cipher = crypto.createCipheriv("aes-256-gcm", this.encryptionKey, nonce);
    const sealed = Buffer.concat([cipher.update(text), cipher.final()]);
    return Buffer.concat([nonce, sealed, cipher.getAuthTag()]).toString("base64url");
  }

  /** The position a cursor of this list and scope names; undefined for anything else. */
  private decodeCursor(cursor: string, list: string, scope: string): bigint | undefined {
    if (cursor.length > cursorMaxLength) return undefined;
    const bytes = Buffer.from(cursor, "base64url");
    // Buffer.from skips characters outside the alphabet: only the canonical text is accepted.
    if (bytes.length <= nonceBytes + tagBytes + 8 || bytes.toString("base64url") !== cursor) return undefined;
    try {
      const decipher = crypto.createDecipheriv("aes-256-gcm", this.encryptionKey, bytes.subarray(0, nonceBytes));
      decipher.setAuthTag(bytes.subarray(bytes.length - tagBytes));
      const text = Buffer.concat([decipher.update(bytes.subarray(nonceBytes, bytes.length - tagBytes)), decipher.final()]);
      if (text.subarray(8).toString("utf8") !== `${list}:${scopeDigest(scope)}`) return undefined;
      return text.readBigUInt64BE(0);
    } catch {
      return undefined;
    }
  }

  /**
   * `first` beyond the limit is served as the limit (the schema says so): a page-size slip in a
   * nested connection must not null the object around it.
   */
  request(list: string, scope: string, first: number, after: string | null | undefined): Outcome<PageRequest> {
    if (!Number.isSafeInteger(first) || first < 1) return badInput("first", "first must be a positive whole number");
    const size = Math.min(first, this.pageSizeMax);
    if (after === null || after === undefined) return succeed({ first: size, afterSeq: undefined });
    const afterSeq = this.decodeCursor(after, list, scope);
    if (afterSeq === undefined) return badInput("after", "after is not a cursor of this list");
    return succeed({ first: size, afterSeq });
  }

  /** Builds a page from up to first+1 rows in list order: the extra row means more. */
  page<T>(list: string, scope: string, rows: T[], request: PageRequest, seqOf: (row: T) => bigint): Page<T> {
    const edges = rows.slice(0, request.first).map((node) => ({ cursor: this.encodeCursor(list, scope, seqOf(node)), node }));
    return {
      edges,
      pageInfo: {
        hasNextPage: rows.length > request.first,
        hasPreviousPage: request.afterSeq !== undefined,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      },
    };
  }
}
