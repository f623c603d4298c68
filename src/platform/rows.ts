// Where rows enter the service: every raw query is named, and its rows are parsed (zod) into
// the shape the code relies on, instead of being cast to a hand-written type. A row of another
// shape (a migration the code does not know, a wrong column type) fails loudly, by name.
import { z } from "zod";
import type { Prisma } from "../generated/prisma/client";
import type { DatabaseClient } from "./database";
import { runnerOf } from "./direct-sql";

export class RowShapeError extends Error {
  override readonly name = "RowShapeError";
}

/**
 * Runs a named query and parses every row it returns: on pg directly where the client has a
 * runner (the service's pool, its Serializable transactions), else through Prisma.
 */
export async function selectRows<Schema extends z.ZodType>(
  db: DatabaseClient,
  queryName: string,
  row: Schema,
  sql: Prisma.Sql,
): Promise<z.output<Schema>[]> {
  const runner = runnerOf(db);
  const rows: unknown[] = runner ? await runner.rows(sql) : await db.$queryRaw(sql);
  const parsed = z.array(row).safeParse(rows);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RowShapeError(`${queryName}: row ${String(issue?.path[0])} does not fit: ${issue?.path.slice(1).join(".")} ${issue?.message}`);
  }
  return parsed.data;
}

/** The first row of a named query, or undefined. */
export async function selectRow<Schema extends z.ZodType>(
  db: DatabaseClient,
  queryName: string,
  row: Schema,
  sql: Prisma.Sql,
): Promise<z.output<Schema> | undefined> {
  return (await selectRows(db, queryName, row, sql))[0];
}

/** Column types as the pg driver adapter returns them. */
export const column = {
  // The column type guarantees the format: checked once, by PostgreSQL.
  uuid: z.string(),
  text: z.string(),
  int: z.number().int(),
  bigint: z.coerce.bigint(),
  timestamp: z.date(),
  boolean: z.boolean(),
};

/** What an audit query reports: any columns, printed as they are. */
export const violationRow = z.record(z.string(), z.unknown());

/** Runs a named statement whose rows nobody reads (an UPDATE, an INSERT), the same way. */
export async function execute(db: DatabaseClient, queryName: string, sql: Prisma.Sql): Promise<void> {
  await selectRows(db, queryName, z.unknown(), sql);
}
