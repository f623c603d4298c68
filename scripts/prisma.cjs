#!/usr/bin/env node
// Runs the Prisma CLI the way it works offline here: with the project's config (WASM engine,
// driver adapter), a DATABASE_URL (a placeholder is enough for `generate`), no telemetry call,
// and long timers unref'd so the process exits when the command is done.
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const args = process.argv.slice(2);
const result = spawnSync(
  process.execPath,
  ["-r", path.join(__dirname, "unref-long-timers.cjs"), require.resolve("prisma/build/index.js"), ...args,
    "--config", path.join(root, "prisma", "prisma.config.ts")],
  {
    cwd: root,
    stdio: "inherit",
    env: {
      ...process.env,
      DATABASE_URL: process.env.DATABASE_URL || "postgresql://placeholder@127.0.0.1:1/placeholder",
      CHECKPOINT_DISABLE: "1",
      PRISMA_HIDE_UPDATE_MESSAGE: "1",
    },
  },
);
process.exit(result.status ?? 1);
