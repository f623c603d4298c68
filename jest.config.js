/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // SPLICE_SKIP_BROWSER_TEST=1 leaves the console's browser test out (no Chromium on this machine).
  testPathIgnorePatterns: process.env.SPLICE_SKIP_BROWSER_TEST === "1" ? ["/node_modules/", "<rootDir>/test/e2e/"] : ["/node_modules/"],
  transform: {
    "^.+\\.ts$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }],
    // jose ships ES modules only; Jest's module system loads CommonJS (Node itself loads both).
    "/node_modules/jose/.+\\.js$": ["@swc/jest", { jsc: { parser: { syntax: "ecmascript" }, target: "es2022" }, module: { type: "commonjs" } }],
  },
  transformIgnorePatterns: ["/node_modules/(?!jose/)"],
  globalSetup: "<rootDir>/test/support/global-setup.ts",
  globalTeardown: "<rootDir>/test/support/global-teardown.ts",
  testTimeout: 60000,
  // The machine has 2 cores; each worker runs its own server and database.
  maxWorkers: 2,
};
