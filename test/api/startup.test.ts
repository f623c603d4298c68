// The real entry point refusing to start: on a port another process holds (it says so and
// exits 1 at once, instead of logging "listening" and serving nothing), and in production with
// secrets that anyone can read in this repository.
import crypto from "node:crypto";
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { createDatabase, dropDatabase, withDatabase } from "../../src/platform/database-admin";
import { serverUrlVariable, templateDatabaseName } from "../support/test-database";
import { serverArguments } from "../../scripts/server-command";

const root = path.resolve(__dirname, "..", "..");

it("exits 1 with a clear message when its port is taken", async () => {
  const databaseUrl = withDatabase(process.env[serverUrlVariable]!, `splice_listen_${process.pid}`);
  await createDatabase(databaseUrl, templateDatabaseName);
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  const port = (holder.address() as net.AddressInfo).port;
  try {
    const server = spawn(process.execPath, serverArguments(), {
      cwd: root,
      env: { ...process.env, NODE_ENV: "test", DATABASE_URL: databaseUrl, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info" },
    });
    let output = "";
    server.stdout!.on("data", (chunk) => (output += chunk));
    server.stderr!.on("data", (chunk) => (output += chunk));
    const exitCode = await new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
    expect(exitCode).toBe(1);
    expect(output).toContain(`Splice API failed to start: could not listen on 127.0.0.1:${port}`);
    expect(output).toContain("EADDRINUSE");
    expect(output).not.toContain("Splice API listening");
  } finally {
    holder.close();
    await dropDatabase(databaseUrl);
  }
});

it("refuses to start in production with secrets published in this repository, naming them", async () => {
  const server = spawn(process.execPath, serverArguments(), {
    cwd: root,
    env: {
      ...process.env,
      NODE_ENV: "production",
      AUTH_JWT_SECRET: "splice-development-token-secret-not-for-production",
      STRIPE_SECRET_KEY: `sk_live_${"a".repeat(40)}`,
      STRIPE_WEBHOOK_SECRET: `whsec_${"b".repeat(40)}`,
      SMTP_URL: "smtps://user:password@smtp.example.com:465",
      LICENSE_SIGNING_KEYS: crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      DATABASE_URL: "postgresql://nobody@127.0.0.1:1/none",
    },
  });
  let output = "";
  server.stderr!.on("data", (chunk) => (output += chunk));
  const exitCode = await new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
  expect(exitCode).toBe(1);
  expect(output).toContain("AUTH_JWT_SECRET, SMTP_URL appear in this repository; production needs secrets of its own");
});
