// Prisma CLI configuration. The "js" engine with a driver adapter makes every CLI command
// (generate, migrate deploy, migrate diff) run on the WASM engine Prisma bundles, with no
// native engine download: this project must work offline.
import path from "node:path";
import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

const placeholderUrl = "postgresql://placeholder@127.0.0.1:1/placeholder";

interface ScriptRunningAdapter {
  executeScript(script: string): Promise<void>;
  underlyingDriver(): { query(sql: string): Promise<unknown> };
  onError(error: unknown): never;
}

// @prisma/adapter-pg 7.10 runs a migration by splitting it on every ";", which cuts PL/pgSQL
// function bodies apart. Sending the script whole uses PostgreSQL's multi-statement simple
// query, which also runs it as one implicit transaction: a migration applies fully or not at all.
function runScriptsWhole(factory: PrismaPg): PrismaPg {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const scriptRunner = adapter as unknown as ScriptRunningAdapter;
    scriptRunner.executeScript = async (script: string) => {
      try {
        await scriptRunner.underlyingDriver().query(script);
      } catch (error) {
        scriptRunner.onError(error);
      }
    };
    return adapter;
  };
  return factory;
}

export default defineConfig({
  engine: "js",
  experimental: { adapter: true },
  schema: path.join(__dirname, "schema.prisma"),
  migrations: { path: path.join(__dirname, "migrations") },
  async adapter() {
    // allowExitOnIdle: an idle pool must not keep the CLI process alive after it finished.
    return runScriptsWhole(
      new PrismaPg({ connectionString: process.env.DATABASE_URL ?? placeholderUrl, allowExitOnIdle: true }),
    );
  },
});
