import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readOrCreateDevelopmentSigningKey } from "../../src/modules/licenses/license-signer";
import { ConfigError, loadConfig, openWithoutProduction, secretsOf } from "../../src/config";
import { plansOf } from "../../src/modules/billing/plan";
import { publishedSecretNames } from "../../src/platform/published-secrets";

const production = {
  NODE_ENV: "production",
  AUTH_JWT_SECRET: "a-production-secret-of-sufficient-length",
  STRIPE_SECRET_KEY: "sk_live_something-of-sufficient-length",
  STRIPE_WEBHOOK_SECRET: "whsec_something-of-sufficient-length",
  SMTP_URL: "smtps://user:pass@smtp.example.com:465",
  LICENSE_SIGNING_KEYS: crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
};

describe("configuration", () => {
  it("starts with defaults in development: STARTER 15 h, 2 seats, 6 h reservations", () => {
    const config = loadConfig({});
    expect(config.tiers.STARTER).toEqual({ monthlySeconds: 54_000, maxDevices: 2 });
    expect(config.credits.reservationTtlSeconds).toBe(21_600);
    expect(config.graphql.introspection).toBe("everyone");
  });

  it("accepts a complete production configuration, with introspection for staff only", () => {
    expect(loadConfig(production).graphql.introspection).toBe("staff");
  });

  it("reads license signing keys: Ed25519 PEMs only, the first signs", () => {
    const second = crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    expect(loadConfig({ ...production, LICENSE_SIGNING_KEYS: `${production.LICENSE_SIGNING_KEYS}\n${second}` }).licenses.signingKeyPems).toEqual([
      production.LICENSE_SIGNING_KEYS.trim(),
      second.trim(),
    ]);
    const rsa = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    expect(() => loadConfig({ ...production, LICENSE_SIGNING_KEYS: rsa })).toThrow("LICENSE_SIGNING_KEYS: key 1 is not an Ed25519 key");
    expect(() => loadConfig({ ...production, LICENSE_SIGNING_KEYS: "not a key" })).toThrow("LICENSE_SIGNING_KEYS: no -----BEGIN PRIVATE KEY----- block");
    const encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----";
    expect(() => loadConfig({ ...production, LICENSE_SIGNING_KEYS: `${encrypted}\n${second}` })).toThrow("LICENSE_SIGNING_KEYS: only unencrypted PKCS#8 blocks");
  });

  it.each(["AUTH_JWT_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "SMTP_URL", "LICENSE_SIGNING_KEYS"])("refuses production without %s", (name) => {
    const environment: Record<string, string> = { ...production };
    delete environment[name];
    expect(() => loadConfig(environment)).toThrow(ConfigError);
  });

  it("accepts production with an identity provider and no secret of its own (then it mints nothing)", () => {
    const { AUTH_JWT_SECRET: _secret, ...withoutSecret } = production;
    const identityProvider = { AUTH_JWKS_URL: "https://idp.example/.well-known/jwks.json", AUTH_ISSUER: "https://idp.example/" };
    expect(() => loadConfig({ ...withoutSecret, ...identityProvider })).toThrow("CURSOR_SECRET: required in production without AUTH_JWT_SECRET");
    const config = loadConfig({ ...withoutSecret, ...identityProvider, CURSOR_SECRET: "a-cursor-secret-of-sufficient-length" });
    expect(config.auth.jwtSecret).toBeUndefined();
    expect(config.auth.identityProvider?.issuer).toBe("https://idp.example/");
    expect(() => loadConfig({ ...production, AUTH_JWKS_URL: "https://idp.example/.well-known/jwks.json" })).toThrow("AUTH_ISSUER: required with AUTH_JWKS_URL");
    expect(() => loadConfig({ ...production, ...identityProvider, AUTH_JWKS_URL: "http://idp.example/jwks.json" })).toThrow("AUTH_JWKS_URL: must be https in production");
  });

  it.each(["AUTH_JWT_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "METRICS_TOKEN"])("refuses a production %s shorter than 32 bytes", (name) => {
    expect(() => loadConfig({ ...production, [name]: "x".repeat(31) })).toThrow(`${name}: must be at least 32 bytes in production`);
    expect(() => loadConfig({ ...production, [name]: "x".repeat(32) })).not.toThrow();
  });

  it("binds 127.0.0.1 unless in production, and says what a development setup leaves open", () => {
    expect(loadConfig({}).http.host).toBe("127.0.0.1");
    expect(loadConfig(production).http.host).toBe("0.0.0.0");
    expect(openWithoutProduction(loadConfig({}))).toEqual([
      "the published development token secret (anyone can mint staff tokens)",
      "introspection for everyone",
      "/metrics without a token",
      "Stripe placeholder credentials (checkout and webhooks will not work against Stripe)",
    ]);
    expect(openWithoutProduction(loadConfig(production))).toEqual([]);
  });

  it("finds secrets published in this repository, and no others", () => {
    const config = loadConfig({});
    expect(publishedSecretNames({ ...secretsOf(config), METRICS_TOKEN: crypto.randomBytes(32).toString("hex") }).sort()).toEqual([
      "AUTH_JWT_SECRET",
      "STRIPE_SECRET_KEY",
      "STRIPE_WEBHOOK_SECRET",
    ]);
    expect(publishedSecretNames({ AUTH_JWT_SECRET: production.AUTH_JWT_SECRET })).toEqual(["AUTH_JWT_SECRET"]);
  });

  it("names every invalid variable", () => {
    const message = (() => {
      try {
        loadConfig({ PORT: "nope", TX_MAX_ATTEMPTS: "0", PAGE_SIZE_MAX: "1.5" });
        return "";
      } catch (error) {
        return (error as Error).message;
      }
    })();
    for (const name of ["PORT", "TX_MAX_ATTEMPTS", "PAGE_SIZE_MAX"]) expect(message).toContain(`${name}:`);
    expect(() => loadConfig({ TX_BACKOFF_BASE_MS: "500", TX_BACKOFF_MAX_MS: "100" })).toThrow(/TX_BACKOFF_BASE_MS/);
    expect(() => loadConfig({ DASHBOARD_ORIGINS: "dashboard.example.com" })).toThrow(/DASHBOARD_ORIGINS/);
  });

  it("validates the plan table and turns hours into seconds", () => {
    const plans = plansOf(
      loadConfig({
        STRIPE_PLANS: JSON.stringify({ price_pro: { type: "subscription", tier: "PRO", monthlyHours: 50 }, price_pack: { type: "hours", hours: 10 } }),
      }),
    );
    expect(plans.get("price_pro")).toEqual({ type: "subscription", tier: "PRO", monthlySeconds: 180_000 });
    expect(plans.get("price_pack")).toEqual({ type: "hours", seconds: 36_000 });
    for (const bad of ["not json", JSON.stringify({ prod_x: { type: "hours", hours: 1 } }), JSON.stringify({ price_x: { type: "hours", hours: 0 } }), JSON.stringify({ price_x: { type: "subscription", tier: "GOLD", monthlyHours: 1 } })]) {
      expect(() => loadConfig({ STRIPE_PLANS: bad })).toThrow(/STRIPE_PLANS/);
    }
  });
});

describe("the development license signing key", () => {
  it("is generated once, mode 0600, read back after, and refused when the file holds no key", () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "splice-key-"));
    const file = path.join(directory, "nested", "license-signing-key.pem");
    const first = readOrCreateDevelopmentSigningKey(file);
    expect(first.created).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(readOrCreateDevelopmentSigningKey(file)).toEqual({ pem: first.pem, created: false });
    expect(fs.readdirSync(path.dirname(file))).toEqual(["license-signing-key.pem"]);
    fs.writeFileSync(file, "garbage");
    expect(() => readOrCreateDevelopmentSigningKey(file)).toThrow(`${file} is not an Ed25519 private key`);
    fs.rmSync(directory, { recursive: true });
  });
});
