// Keyset pagination over a monotonically increasing sequence column, forward only (first/after).
// Cursors are opaque: "<list>:<seq>" sealed with AES-256-GCM, so a client can neither read a
// sequence number (how many customers or entries exist) nor forge a position, and a cursor of
// one list is refused by another. The nonce is derived from the text (SIV-like), so the same
// position always gets the same cursor.
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

export class Pager {
  private readonly encryptionKey: Buffer;
  private readonly nonceKey: Buffer;

  /** `secret`: at least 32 bytes; two keys are derived from it, one to seal, one for nonces. */
  constructor(secret: string, readonly pageSizeMax: number) {
    this.encryptionKey = Buffer.from(crypto.hkdfSync("sha256", secret, "splice-cursor", "seal", 32));
    this.nonceKey = Buffer.from(crypto.hkdfSync("sha256", secret, "splice-cursor", "nonce", 32));
  }

  encodeCursor(list: string, seq: bigint): string {
    const text = Buffer.from(`${list}:${seq}`);
    const nonce = crypto.createHmac("sha256", this.nonceKey).update(text).digest().subarray(0, nonceBytes);
    const cipher = crypto.createCipheriv("aes-256-gcm", this.encryptionKey, nonce);
    const sealed = Buffer.concat([cipher.update(text), cipher.final()]);
    return Buffer.concat([nonce, sealed, cipher.getAuthTag()]).toString("base64url");
  }

  private decodeCursor(cursor: string): { list: string; seq: bigint } | undefined {
    if (cursor.length > cursorMaxLength) return undefined;
    const bytes = Buffer.from(cursor, "base64url");
    if (bytes.length <= nonceBytes + tagBytes) return undefined;
    try {
      const decipher = crypto.createDecipheriv("aes-256-gcm", this.encryptionKey, bytes.subarray(0, nonceBytes));
      decipher.setAuthTag(bytes.subarray(bytes.length - tagBytes));
      const text = Buffer.concat([decipher.update(bytes.subarray(nonceBytes, bytes.length - tagBytes)), decipher.final()]).toString("utf8");
      const match = /^([a-z-]+):(\d{1,19})$/.exec(text);
      return match ? { list: match[1]!, seq: BigInt(match[2]!) } : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * `first` beyond the limit is served as the limit (the schema says so): a page-size slip in a
   * nested connection must not null the object around it.
   */
  request(list: string, first: number, after: string | null | undefined): Outcome<PageRequest> {
    if (!Number.isSafeInteger(first) || first < 1) return badInput("first", "first must be a positive whole number");
    const size = Math.min(first, this.pageSizeMax);
    if (after === null || after === undefined) return succeed({ first: size, afterSeq: undefined });
    const position = this.decodeCursor(after);
    if (!position || position.list !== list) return badInput("after", "after is not a cursor of this list");
    return succeed({ first: size, afterSeq: position.seq });
  }

  /** Builds a page from up to first+1 rows in list order: the extra row means more. */
  page<T>(list: string, rows: T[], request: PageRequest, seqOf: (row: T) => bigint): Page<T> {
    const edges = rows.slice(0, request.first).map((node) => ({ cursor: this.encodeCursor(list, seqOf(node)), node }));
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
