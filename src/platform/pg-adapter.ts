// The PostgreSQL driver adapter for Prisma, hardened against a connection leak.
//
// Prisma 6.19's client engine ends a transaction by running COMMIT through the adapter and only
// then calling the adapter's commit(), which is what returns the connection to the pool. When
// COMMIT itself fails (at Serializable a conflict is often reported there, SQLSTATE 40001),
// commit() is never called: the connection leaks, and after pool-size leaks every query waits
// forever. Here a failed COMMIT releases the connection (PostgreSQL has already ended the
// transaction), and each transaction releases its connection at most once.
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";

interface AdapterQuery {
  sql: string;
}

interface AdapterTransaction {
  executeRaw(query: AdapterQuery): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

interface TransactionalAdapter {
  startTransaction(isolationLevel?: string): Promise<AdapterTransaction>;
}

function releaseAtMostOnce(transaction: AdapterTransaction): AdapterTransaction {
  let released = false;
  const commit = transaction.commit.bind(transaction);
  const rollback = transaction.rollback.bind(transaction);
  const executeRaw = transaction.executeRaw.bind(transaction);
  transaction.commit = async () => {
    if (released) return;
    released = true;
    await commit();
  };
  transaction.rollback = async () => {
    if (released) return;
    released = true;
    await rollback();
  };
  transaction.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (query.sql.trim().toUpperCase() === "COMMIT") await transaction.rollback();
      throw error;
    }
  };
  return transaction;
}

export function createPgAdapter(url: string, poolSize: number, acquireTimeoutMs: number): { adapter: PrismaPg; pool: pg.Pool } {
  // connectionTimeoutMillis: waiting for a pooled connection fails after this instead of forever.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: acquireTimeoutMs });
  // An idle connection dropped by the server must not crash the process; the pool replaces it.
  pool.on("error", () => undefined);
  const factory = new PrismaPg(pool);
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const transactional = adapter as unknown as TransactionalAdapter;
    const startTransaction = transactional.startTransaction.bind(transactional);
    transactional.startTransaction = async (isolationLevel) => releaseAtMostOnce(await startTransaction(isolationLevel));
    return adapter;
  };
  return { adapter: factory, pool };
}
