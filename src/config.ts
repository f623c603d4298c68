// Every environment variable and every limit of the service, named once, parsed and validated
// at start. Nothing else reads process.env.
import crypto from "node:crypto";
import { z } from "zod";

const secondsPerHour = 3600;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const flag = z.enum(["true", "false", "1", "0"]).transform((value) => value === "true" || value === "1");

const tierSchema = z.enum(["STARTER", "PRO", "STUDIO"]);
const maxPlanHours = 10_000;

/** STRIPE_PLANS: Stripe price id -> a tier subscription (with its monthly hours) or an hour pack. */
const planTableSchema = z.record(
  z.string().regex(/^price_[A-Za-z0-9_]+$/, "keys must be Stripe price ids (price_...)"),
  z.discriminatedUnion("type", [
    z.object({ type: z.literal("subscription"), tier: tierSchema, monthlyHours: z.number().int().min(0).max(maxPlanHours) }).strict(),
    z.object({ type: z.literal("hours"), hours: z.number().int().min(1).max(maxPlanHours) }).strict(),
  ]),
);

const pemPrivateKeyPattern = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/g;

/** The PEM blocks of a LICENSE_SIGNING_KEYS value, in order (the first signs). */
function signingKeyPems(value: string): string[] {
  return value.match(pemPrivateKeyPattern) ?? [];
}

/** Why a LICENSE_SIGNING_KEYS value cannot be used, or undefined: Ed25519 private keys (PKCS#8 PEM) only. */
function signingKeysProblem(value: string): string | undefined {
  const pems = signingKeyPems(value);
  if (pems.length === 0) return "no -----BEGIN PRIVATE KEY----- block (PKCS#8 PEM)";
  // Anything else (an ENCRYPTED or OPENSSH block) would be skipped, and another key would sign.
  if (value.replace(pemPrivateKeyPattern, "").trim() !== "") return "only unencrypted PKCS#8 blocks (-----BEGIN PRIVATE KEY-----), nothing else";
  if (pems.length > signingKeysMax) return `at most ${signingKeysMax} keys`;
  for (const [index, pem] of pems.entries()) {
    try {
      if (crypto.createPrivateKey(pem).asymmetricKeyType !== "ed25519") return `key ${index + 1} is not an Ed25519 key`;
    } catch {
      return `key ${index + 1} is not a readable private key`;
    }
  }
  return undefined;
}

function isHttpsOrLoopback(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "https:" || hostname === "127.0.0.1" || hostname === "localhost" || hostname === "[::1]";
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const environmentSchema = z
  .object({
    NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
    PORT: int(0, 65_535).default(4000),
    WEB_CONCURRENCY: int(1, 64).default(1),
    WORKER_START_TIMEOUT_MS: int(1000, 600_000).default(60_000),
    WORKER_REPLACEMENTS_PER_MINUTE: int(0, 100).default(5),
    // Set by the primary process for its workers (platform/workers.ts), never by hand.
    SPLICE_CLUSTER_DATABASE_URL: z.string().min(1).optional(),
    HOST: z.string().min(1).optional(),
    DATABASE_URL: z.string().url().optional(),
    DATABASE_POOL_SIZE: int(1, 100).default(10),
    DATABASE_LOCK_SESSIONS: int(1, 100).default(10),
    // Apply missing migrations at start (true), or only check and refuse to start without them
    // (false: rolling deploys run `npm run migrate` as their own step first).
    MIGRATE_ON_START: flag.default(true),
    // PostgreSQL cancels a statement running longer than this (statement_timeout).
    DATABASE_STATEMENT_TIMEOUT_MS: int(100, 3_600_000).default(5000),
    // The client gives up on a statement unanswered after this, and discards its connection: the
    // server may be unreachable without a word (a partition). Longer than the statement timeout,
    // so that a slow statement is normally cancelled by the server, which keeps the session.
    DATABASE_QUERY_TIMEOUT_MS: int(100, 3_600_000).default(6000),
    // PostgreSQL ends a session left idle inside a transaction this long (its client vanished
    // mid-transaction), releasing its locks (idle_in_transaction_session_timeout).
    DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: int(100, 3_600_000).default(10_000),
    // Named prepared statements (parsed and planned once per connection); off behind a pooler in
    // transaction mode that does not carry them between clients (PgBouncer before 1.21).
    DATABASE_PREPARED_STATEMENTS: flag.default(true),
    // Distinct statement texts prepared at most; the rest run unnamed.
    DATABASE_PREPARED_STATEMENTS_MAX: int(1, 10_000).default(500),
    // After a conflict on a customer, this instance takes that customer's advisory lock before
    // every transaction for this long, so that instances queue instead of racing on it.
    CONTENDED_CUSTOMER_LOCK_SECONDS: int(0, 3600).default(30),
    // Customers remembered as contended at once (the oldest is forgotten first).
    CONTENDED_CUSTOMERS_MAX: int(1, 1_000_000).default(10_000),
    EMBEDDED_PG_DIR: z.string().min(1).default(".data/postgres"),
    EMBEDDED_PG_PORT: int(1024, 65_535).default(54329),
    EMBEDDED_PG_DATABASE: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default("splice"),
    AUTH_JWT_SECRET: z.string().min(32).optional(),
    AUTH_TOKEN_DEFAULT_TTL_SECONDS: int(60, 366 * 24 * secondsPerHour).default(30 * 24 * secondsPerHour),
    CURSOR_SECRET: z.string().min(32).optional(),
    AUTH_JWT_ISSUER: z.string().min(1).max(200).default("splice-api"),
    AUTH_AUDIENCE: z.string().min(1).max(200).default("splice-api"),
    AUTH_JWKS_URL: z.string().url().optional(),
    AUTH_ISSUER: z.string().min(1).max(200).optional(),
    AUTH_ROLE_CLAIM: z.string().min(1).max(200).default("splice_role"),
    AUTH_SUBJECT_CLAIM: z.string().min(1).max(200).default("sub"),
    AUTH_CLOCK_SKEW_SECONDS: int(0, 300).default(30),
    AUTH_VERIFIED_TOKEN_CACHE_ENTRIES: int(0, 1_000_000).default(10_000),
    AUTH_VERIFIED_TOKEN_CACHE_SECONDS: int(1, 3600).default(60),
    AUTH_JWKS_TIMEOUT_MS: int(100, 30_000).default(5000),
    AUTH_JWKS_CACHE_MAX_AGE_SECONDS: int(1, 86_400).default(600),
    AUTH_JWKS_COOLDOWN_SECONDS: int(1, 3600).default(30),

    TIER_STARTER_MONTHLY_SECONDS: int(0, 10_000 * secondsPerHour).default(15 * secondsPerHour),
    TIER_PRO_MONTHLY_SECONDS: int(0, 10_000 * secondsPerHour).default(50 * secondsPerHour),
    TIER_STUDIO_MONTHLY_SECONDS: int(0, 10_000 * secondsPerHour).default(150 * secondsPerHour),

    TIER_STARTER_MAX_DEVICES: int(1, 100).default(2),
    TIER_PRO_MAX_DEVICES: int(1, 100).default(3),
    TIER_STUDIO_MAX_DEVICES: int(1, 100).default(5),

    LICENSE_KEY_GENERATION_ATTEMPTS: int(1, 20).default(5),
    LICENSE_SIGNING_KEYS: z.string().min(1).max(20_000).optional(),
    LICENSE_SIGNING_KEY_FILE: z.string().min(1).default(".data/license-signing-key.pem"),
    LICENSE_CERTIFICATE_ISSUER: z.string().min(1).max(200).default("splice-licensing"),
    LICENSE_CERTIFICATE_TTL_SECONDS: int(3600, 90 * 24 * secondsPerHour).default(14 * 24 * secondsPerHour),
    LICENSE_CERTIFICATE_DISPUTED_TTL_SECONDS: int(600, 90 * 24 * secondsPerHour).default(24 * secondsPerHour),
    LICENSE_DISPUTE_MEMORY_DAYS: int(1, 3650).default(180),
    CERTIFICATE_CHECKOUTS_PER_DEVICE_PER_HOUR: int(1, 1000).default(12),
    LICENSE_OFFLINE_DEVICES_PER_SEAT: int(1, 10).default(2),
    FINGERPRINT_MAX_LENGTH: int(8, 128).default(128),
    DEVICE_NAME_MAX_LENGTH: int(1, 100).default(100),
    ACTIVATION_FAILURE_WINDOW_SECONDS: int(1, 86_400).default(900),
    ACTIVATION_FAILURES_PER_ADDRESS_MAX: int(1, 100_000).default(20),
    ACTIVATION_FAILURES_PER_KEY_MAX: int(1, 100_000).default(10),
    TRUST_PROXY: z.string().min(1).optional(),

    SMTP_URL: z.string().url().optional(),
    MAIL_FROM: z.string().min(3).max(254).default("Splice <licenses@splice.invalid>"),
    MAIL_DIRECTORY: z.string().min(1).default(".data/mail"),
    OUTBOX_ENABLED: flag.default(true),
    OUTBOX_POLL_INTERVAL_MS: int(10, 60_000).default(1000),
    OUTBOX_BATCH_SIZE: int(1, 1000).default(20),
    OUTBOX_LEASE_SECONDS: int(1, 3600).default(60),
    OUTBOX_MAX_ATTEMPTS: int(1, 100).default(12),
    OUTBOX_BACKOFF_BASE_MS: int(1, 3_600_000).default(2000),
    OUTBOX_BACKOFF_MAX_MS: int(1, 86_400_000).default(3_600_000),
    OUTBOX_SEND_TIMEOUT_MS: int(100, 120_000).default(15_000),

    STRIPE_SECRET_KEY: z.string().min(8).optional(),
    STRIPE_WEBHOOK_SECRET: z.string().min(8).optional(),
    STRIPE_API_HOST: z.string().min(1).optional(),
    STRIPE_API_PORT: int(1, 65_535).optional(),
    STRIPE_API_PROTOCOL: z.enum(["http", "https"]).optional(),
    STRIPE_TIMEOUT_MS: int(100, 120_000).default(10_000),
    STRIPE_PLANS: z.string().default("{}"),
    ZERO_AMOUNT_INVOICES_GRANT: flag.default(false),
    STRIPE_WEBHOOK_MAX_BYTES: int(1024, 10_000_000).default(1_000_000),
    STRIPE_WEBHOOK_TOLERANCE_SECONDS: int(1, 86_400).default(300),
    DASHBOARD_ORIGINS: z.string().default("http://localhost:3000"),
    CHECKOUT_URL_MAX_LENGTH: int(10, 2048).default(2048),

    RESERVATION_TTL_SECONDS: int(10, 7 * 24 * secondsPerHour).default(6 * secondsPerHour),
    USAGE_RANGE_MAX_DAYS: int(1, 3660).default(366),
    USAGE_BUCKETS_MAX: int(10, 100_000).default(5000),
    LOW_BALANCE_EMAILS_PER_DAY: int(1, 100).default(3),
    SUBSCRIPTION_GRACE_SECONDS: int(0, 90 * 86_400).default(0),
    SUBSCRIPTION_ROLLOVER_MAX_PERIODS: int(0, 24).default(0),
    PURCHASE_GRANT_TTL_DAYS: int(0, 3660).default(365),
    EXPIRY_NOTICE_DAYS: int(1, 90).default(7),
    CREDIT_GRANTS_LIVE_MAX: int(1, 10_000).default(500),
    RESERVATION_MAX_SECONDS: int(1, 7 * 24 * secondsPerHour).default(24 * secondsPerHour),
    ACTUAL_MAX_SECONDS: int(1, 14 * 24 * secondsPerHour).default(48 * secondsPerHour),
    ACTIVE_RESERVATIONS_PER_CUSTOMER_MAX: int(1, 10_000).default(50),
    ADJUSTMENT_MAX_ABS_SECONDS: int(1, 1_000_000_000).default(10_000 * secondsPerHour),
    BALANCE_MAX_SECONDS: int(1, 2_000_000_000).default(1_000_000_000),
    ENDPOINT_MAX_LENGTH: int(1, 128).default(64),
    NOTE_MAX_LENGTH: int(1, 1000).default(500),
    REASON_MAX_LENGTH: int(1, 1000).default(500),
    IDEMPOTENCY_KEY_MAX_LENGTH: int(1, 255).default(128),
    EMAIL_MAX_LENGTH: int(3, 254).default(254),
    STRIPE_ID_MAX_LENGTH: int(1, 255).default(255),
    SEARCH_QUERY_MAX_LENGTH: int(1, 254).default(254),
    PAGE_SIZE_MAX: int(1, 1000).default(100),

    TX_MAX_ATTEMPTS: int(1, 50).default(10),
    TX_BACKOFF_BASE_MS: int(1, 1000).default(4),
    TX_BACKOFF_MAX_MS: int(1, 10_000).default(200),
    TX_MAX_WAIT_MS: int(100, 60_000).default(2000),
    TX_TIMEOUT_MS: int(100, 60_000).default(5000),
    TX_LOCK_TIMEOUT_MS: int(100, 60_000).default(5000),
    // A COMMIT sent close to a request's deadline still waits this long for its answer (cut on a
    // healthy server, its outcome would be unknown to the client), and after a commit the rest
    // of the request (the reads that fill its answer) has at least this long.
    TX_COMMIT_WAIT_MIN_MS: int(10, 60_000).default(300),
    UNAVAILABLE_RETRY_AFTER_SECONDS: int(1, 3600).default(2),

    SWEEPER_ENABLED: flag.default(true),
    SWEEPER_INTERVAL_MS: int(100, 3_600_000).default(5000),
    SWEEPER_BATCH_SIZE: int(1, 10_000).default(100),

    METRICS_TOKEN: z.string().min(16).optional(),
    QUERY_MAX_DEPTH: int(2, 50).default(12),
    QUERY_MAX_COST: int(10, 1_000_000).default(20_000),
    QUERY_MAX_ALIASES: int(0, 1000).default(20),
    QUERY_MAX_DIRECTIVES: int(0, 1000).default(50),
    QUERY_MAX_TOKENS: int(100, 100_000).default(4000),
    // Brackets, braces and parentheses inside one another in a document, and levels of objects
    // and lists in its variables: refused before anything recursive reads them.
    QUERY_MAX_NESTING: int(4, 1000).default(64),
    VARIABLES_MAX_NESTING: int(1, 1000).default(32),
    INTROSPECTION: z.enum(["staff", "everyone"]).optional(),
    RESEND_LICENSE_PER_HOUR_MAX: int(1, 1000).default(5),
    CHECKOUT_PER_HOUR_MAX: int(1, 10_000).default(30),
    SHUTDOWN_TIMEOUT_MS: int(100, 120_000).default(10_000),
    AUDIT_TIMEOUT_MS: int(1000, 3_600_000).default(300_000),
    CONSOLE_ENABLED: flag.default(true),
  })
  .superRefine((env, context) => {
    if (env.NODE_ENV === "production" && !env.AUTH_JWT_SECRET && !env.AUTH_JWKS_URL) {
      context.addIssue({ code: "custom", path: ["AUTH_JWT_SECRET"], message: "production needs AUTH_JWT_SECRET, AUTH_JWKS_URL or both" });
    }
    if (env.NODE_ENV === "production" && !env.CURSOR_SECRET && !env.AUTH_JWT_SECRET) {
      context.addIssue({ code: "custom", path: ["CURSOR_SECRET"], message: "required in production without AUTH_JWT_SECRET: it seals paging cursors" });
    }
    if (env.NODE_ENV === "production" && env.AUTH_JWKS_URL && !isHttpsOrLoopback(env.AUTH_JWKS_URL)) {
      context.addIssue({ code: "custom", path: ["AUTH_JWKS_URL"], message: "must be https in production (anyone on the path could swap the keys)" });
    }
    if (env.NODE_ENV === "production" && !env.LICENSE_SIGNING_KEYS) {
      context.addIssue({ code: "custom", path: ["LICENSE_SIGNING_KEYS"], message: "required in production: the Ed25519 keys that sign license certificates (PEM)" });
    }
    if (env.LICENSE_SIGNING_KEYS) {
      const problem = signingKeysProblem(env.LICENSE_SIGNING_KEYS);
      if (problem) context.addIssue({ code: "custom", path: ["LICENSE_SIGNING_KEYS"], message: problem });
    }
    if (env.LICENSE_CERTIFICATE_DISPUTED_TTL_SECONDS > env.LICENSE_CERTIFICATE_TTL_SECONDS) {
      context.addIssue({ code: "custom", path: ["LICENSE_CERTIFICATE_DISPUTED_TTL_SECONDS"], message: "must not exceed LICENSE_CERTIFICATE_TTL_SECONDS" });
    }
    if (env.AUTH_JWKS_URL && !env.AUTH_ISSUER) {
      context.addIssue({ code: "custom", path: ["AUTH_ISSUER"], message: "required with AUTH_JWKS_URL: the issuer its tokens must name" });
    }
    if (env.AUTH_JWKS_URL && env.AUTH_ISSUER === env.AUTH_JWT_ISSUER) {
      context.addIssue({ code: "custom", path: ["AUTH_ISSUER"], message: "must differ from AUTH_JWT_ISSUER, the issuer of tokens this service mints" });
    }
    if (env.DATABASE_QUERY_TIMEOUT_MS <= env.DATABASE_STATEMENT_TIMEOUT_MS) {
      context.addIssue({ code: "custom", path: ["DATABASE_QUERY_TIMEOUT_MS"], message: "must exceed DATABASE_STATEMENT_TIMEOUT_MS (the server cancels a slow statement first)" });
    }
    if (env.DATABASE_QUERY_TIMEOUT_MS <= env.TX_LOCK_TIMEOUT_MS) {
      context.addIssue({ code: "custom", path: ["DATABASE_QUERY_TIMEOUT_MS"], message: "must exceed TX_LOCK_TIMEOUT_MS (the server gives up on a customer's lock first)" });
    }
    if (env.TX_COMMIT_WAIT_MIN_MS >= env.DATABASE_QUERY_TIMEOUT_MS) {
      context.addIssue({ code: "custom", path: ["TX_COMMIT_WAIT_MIN_MS"], message: "must be below DATABASE_QUERY_TIMEOUT_MS" });
    }
    if (env.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS <= env.TX_TIMEOUT_MS) {
      context.addIssue({ code: "custom", path: ["DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS"], message: "must exceed TX_TIMEOUT_MS (a live transaction is never ended by the server)" });
    }
    if (env.TX_BACKOFF_BASE_MS > env.TX_BACKOFF_MAX_MS) {
      context.addIssue({ code: "custom", path: ["TX_BACKOFF_BASE_MS"], message: "must not exceed TX_BACKOFF_MAX_MS" });
    }
    if (env.NODE_ENV === "production" && !env.SMTP_URL) {
      context.addIssue({ code: "custom", path: ["SMTP_URL"], message: "required in production: license keys are sent by email" });
    }
    if (env.NODE_ENV === "production" && (!env.STRIPE_SECRET_KEY || !env.STRIPE_WEBHOOK_SECRET)) {
      context.addIssue({ code: "custom", path: ["STRIPE_SECRET_KEY"], message: "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required in production" });
    }
    if (env.NODE_ENV === "production") {
      for (const name of ["AUTH_JWT_SECRET", "CURSOR_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "METRICS_TOKEN"] as const) {
        const value = env[name];
        if (value !== undefined && Buffer.byteLength(value) < productionSecretMinBytes) {
          context.addIssue({ code: "custom", path: [name], message: `must be at least ${productionSecretMinBytes} bytes in production` });
        }
      }
    }
    const plans = planTableSchema.safeParse(parseJson(env.STRIPE_PLANS));
    if (!plans.success) {
      context.addIssue({ code: "custom", path: ["STRIPE_PLANS"], message: `invalid plan table: ${plans.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`).join("; ")}` });
    }
    for (const origin of env.DASHBOARD_ORIGINS.split(",").filter(Boolean)) {
      if (!/^https?:\/\/[^/]+$/.test(origin.trim())) {
        context.addIssue({ code: "custom", path: ["DASHBOARD_ORIGINS"], message: `not an origin: ${origin}` });
      }
    }
    if (env.RESERVATION_MAX_SECONDS > env.ACTUAL_MAX_SECONDS) {
      context.addIssue({ code: "custom", path: ["ACTUAL_MAX_SECONDS"], message: "must be at least RESERVATION_MAX_SECONDS" });
    }
  });

type Environment = z.infer<typeof environmentSchema>;

const productionSecretMinBytes = 32;
const signingKeysMax = 5;

// Development and tests sign tokens with a fixed secret so `npm start` works with no setup;
// production refuses to start without its own (validated above).
const developmentTokenSecret = "splice-development-token-secret-not-for-production";
const developmentStripeSecretKey = "sk_test_splice_development";
const developmentStripeWebhookSecret = "whsec_splice_development";

/**
 * What a non-production configuration leaves open, for the one line logged at start: the
 * published development secrets, introspection and metrics for anyone, Stripe placeholders.
 */
export function openWithoutProduction(config: Config): string[] {
  if (config.environment === "production") return [];
  const open: string[] = [];
  if (config.auth.jwtSecret === developmentTokenSecret) open.push("the published development token secret (anyone can mint staff tokens)");
  if (config.graphql.introspection === "everyone") open.push("introspection for everyone");
  if (!config.metrics.token) open.push("/metrics without a token");
  if (config.stripe.secretKey === developmentStripeSecretKey || config.stripe.webhookSecret === developmentStripeWebhookSecret) {
    open.push("Stripe placeholder credentials (checkout and webhooks will not work against Stripe)");
  }
  return open;
}

/** The development defaults: published here, refused in production even where the repository's files are not deployed. */
export const developmentSecrets: readonly string[] = [developmentTokenSecret, developmentStripeSecretKey, developmentStripeWebhookSecret];

/** The secrets production must not take from this repository (see published-secrets.ts). */
export function secretsOf(config: Config): Record<string, string | undefined> {
  return {
    AUTH_JWT_SECRET: config.auth.jwtSecret,
    // Derived from AUTH_JWT_SECRET unless set: then it is that secret, named once.
    CURSOR_SECRET: config.pagination.cursorSecret === config.auth.jwtSecret ? undefined : config.pagination.cursorSecret,
    STRIPE_SECRET_KEY: config.stripe.secretKey,
    STRIPE_WEBHOOK_SECRET: config.stripe.webhookSecret,
    METRICS_TOKEN: config.metrics.token,
    SMTP_URL: config.mail.smtpUrl,
    ...Object.fromEntries(config.licenses.signingKeyPems.map((pem, index) => [`LICENSE_SIGNING_KEYS (key ${index + 1})`, pem])),
  };
}

/** The tiers configuration has settings for (the customers module's Tier has the same names). */
export type TierName = z.infer<typeof tierSchema>;

/** One row of STRIPE_PLANS: a subscription tier's monthly hours, or an hour pack. */
export type PlanSetting = z.infer<typeof planTableSchema>[string];

export interface AuthConfig {
  /** HS256 key of the tokens this service mints (`npm run token`); undefined: none accepted. */
  jwtSecret: string | undefined;
  /** `iss` of minted tokens; external tokens must name identityProvider.issuer instead. */
  mintedIssuer: string;
  /** `aud` every token must name. */
  audience: string;
  defaultTokenTtlSeconds: number;
  identityProvider: { jwksUrl: string; issuer: string; timeoutMs: number; cacheMaxAgeSeconds: number; cooldownSeconds: number } | undefined;
  /** Claim naming the role (`staff` or `customer`) and claim naming the staff name or customer id. */
  roleClaim: string;
  subjectClaim: string;
  clockSkewSeconds: number;
  tokenMaxLength: number;
  /** Verified tokens remembered (0: none), and for how long at most (never past their exp). */
  verifiedTokenCacheEntries: number;
  verifiedTokenCacheSeconds: number;
}

// A bearer token longer than this is refused before any parsing (RS256 tokens with many claims fit).
const authTokenMaxLength = 8192;

export interface DatabaseTimeouts {
  statementMs: number;
  queryMs: number;
  idleInTransactionMs: number;
}

export interface Config {
  environment: Environment["NODE_ENV"];
  http: { port: number; host: string };
  /** WEB_CONCURRENCY > 1: a primary process and that many workers (platform/workers.ts). */
  cluster: { workers: number; workerStartTimeoutMs: number; workerReplacementsPerMinute: number; workerDatabaseUrl: string | undefined };
  database: {
    url: string | undefined;
    poolSize: number;
    lockSessions: number;
    migrateOnStart: boolean;
    preparedStatements: { enabled: boolean; namesMax: number };
    /** Server statement_timeout, the client's wait for an answer, idle_in_transaction_session_timeout. */
    timeouts: DatabaseTimeouts;
    /** Seconds a customer stays locked up front after a conflict, and how many are remembered. */
    contended: { lockSeconds: number; customersMax: number };
    embedded: { directory: string; port: number; databaseName: string };
  };
  auth: AuthConfig;
  /** Seals paging cursors; every instance needs the same one for cursors to cross instances. */
  pagination: { cursorSecret: string };
  tiers: Record<TierName, { monthlySeconds: number; maxDevices: number }>;
  licenses: {
    keyGenerationAttempts: number;
    fingerprintMaxLength: number;
    deviceNameMaxLength: number;
    activationFailureWindowSeconds: number;
    activationFailuresPerAddressMax: number;
    activationFailuresPerKeyMax: number;
    /** Ed25519 private keys (PKCS#8 PEM) from LICENSE_SIGNING_KEYS: the first signs, all are published. */
    signingKeyPems: string[];
    /** Where development keeps the key it generates when LICENSE_SIGNING_KEYS is unset. */
    developmentSigningKeyFile: string;
    certificateIssuer: string;
    certificateTtlSeconds: number;
    /** A license disputed within disputeMemoryDays gets certificates this short. */
    disputedCertificateTtlSeconds: number;
    disputeMemoryDays: number;
    /** Seated plus released-but-still-certified devices stay within this many per seat. */
    offlineDevicesPerSeat: number;
  };
  /** Express's "trust proxy": which proxies' X-Forwarded-For to believe for client addresses. */
  trustProxy: string | undefined;
  mail: { smtpUrl: string | undefined; from: string; directory: string };
  outbox: {
    enabled: boolean;
    pollIntervalMs: number;
    batchSize: number;
    leaseSeconds: number;
    maxAttempts: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    sendTimeoutMs: number;
  };
  credits: {
    reservationTtlSeconds: number;
    reservationMaxSeconds: number;
    actualMaxSeconds: number;
    activeReservationsPerCustomerMax: number;
    adjustmentMaxAbsSeconds: number;
    balanceMaxSeconds: number;
    /** The widest range `usage` answers, and the most buckets it returns. */
    usageRangeMaxDays: number;
    usageBucketsMax: number;
    /** Low-balance emails a customer gets at most per day, however often the balance dips. */
    lowBalanceEmailsPerDay: number;
    /** A subscription grant expires this long after the end of the period its invoice paid for... */
    subscriptionGraceSeconds: number;
    /** ...plus this many more periods of the same length: unused hours roll over that far. */
    subscriptionRolloverMaxPeriods: number;
    /** An hour pack's grant expires this many days after the payment; 0: never. */
    purchaseGrantTtlDays: number;
    /** One email this many days before a grant of an hour or more expires with seconds unspent. */
    expiryNoticeDays: number;
    /** Grants of one customer with seconds left or held: every balance transaction reads them all. */
    grantsLiveMax: number;
  };
  limits: {
    endpointMaxLength: number;
    noteMaxLength: number;
    reasonMaxLength: number;
    idempotencyKeyMaxLength: number;
    emailMaxLength: number;
    stripeIdMaxLength: number;
    searchQueryMaxLength: number;
    pageSizeMax: number;
  };
  transactions: {
    maxAttempts: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    maxWaitMs: number;
    timeoutMs: number;
    lockTimeoutMs: number;
    /** The least a COMMIT waits for its answer, near a request's deadline too. */
    commitWaitMinMs: number;
    /** What a 503 tells clients to wait before trying again (Retry-After, retryAfterSeconds). */
    unavailableRetryAfterSeconds: number;
  };
  sweeper: { enabled: boolean; intervalMs: number; batchSize: number };
  metrics: { token: string | undefined };
  graphql: {
    maxDepth: number;
    maxCost: number;
    maxAliases: number;
    maxDirectives: number;
    maxTokens: number;
    maxNesting: number;
    maxVariablesNesting: number;
    /** Who may introspect: staff only (production default), or everyone (development). */
    introspection: "staff" | "everyone";
  };
  callerLimits: { resendLicensePerHourMax: number; checkoutPerHourMax: number; certificateCheckoutsPerDevicePerHour: number };
  stripe: {
    secretKey: string;
    webhookSecret: string;
    api: { host: string | undefined; port: number | undefined; protocol: "http" | "https" | undefined };
    timeoutMs: number;
    webhookMaxBytes: number;
    webhookToleranceSeconds: number;
    /** Stripe price id -> what it buys. */
    /** STRIPE_PLANS by Stripe price id; the billing module turns them into plans. */
    planTable: Record<string, PlanSetting>;
    /** Whether a paid invoice of amount 0 (a trial period) grants the plan's monthly hours. */
    zeroAmountInvoicesGrant: boolean;
  };
  dashboard: { origins: string[]; urlMaxLength: number };
  shutdownTimeoutMs: number;
  /** How long `npm run audit`'s one snapshot transaction may take. */
  auditTimeoutMs: number;
  /** Whether GET /graphql serves the staff console to browsers. */
  consoleEnabled: boolean;
}

export class ConfigError extends Error {}

/** Parses the environment once; throws ConfigError naming every invalid variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = environmentSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  const env = parsed.data;
  return {
    environment: env.NODE_ENV,
    // Development answers on this machine only: its secrets are published in this repository.
    http: { port: env.PORT, host: env.HOST ?? (env.NODE_ENV === "production" ? "0.0.0.0" : "127.0.0.1") },
    cluster: {
      workers: env.WEB_CONCURRENCY,
      workerStartTimeoutMs: env.WORKER_START_TIMEOUT_MS,
      workerReplacementsPerMinute: env.WORKER_REPLACEMENTS_PER_MINUTE,
      workerDatabaseUrl: env.SPLICE_CLUSTER_DATABASE_URL,
    },
    database: {
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      lockSessions: env.DATABASE_LOCK_SESSIONS,
      migrateOnStart: env.MIGRATE_ON_START,
      preparedStatements: { enabled: env.DATABASE_PREPARED_STATEMENTS, namesMax: env.DATABASE_PREPARED_STATEMENTS_MAX },
      timeouts: {
        statementMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
        queryMs: env.DATABASE_QUERY_TIMEOUT_MS,
        idleInTransactionMs: env.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      },
      contended: { lockSeconds: env.CONTENDED_CUSTOMER_LOCK_SECONDS, customersMax: env.CONTENDED_CUSTOMERS_MAX },
      embedded: { directory: env.EMBEDDED_PG_DIR, port: env.EMBEDDED_PG_PORT, databaseName: env.EMBEDDED_PG_DATABASE },
    },
    auth: {
      // Production without a secret of its own accepts only the identity provider's tokens.
      jwtSecret: env.AUTH_JWT_SECRET ?? (env.NODE_ENV === "production" ? undefined : developmentTokenSecret),
      mintedIssuer: env.AUTH_JWT_ISSUER,
      audience: env.AUTH_AUDIENCE,
      defaultTokenTtlSeconds: env.AUTH_TOKEN_DEFAULT_TTL_SECONDS,
      identityProvider: env.AUTH_JWKS_URL
        ? {
            jwksUrl: env.AUTH_JWKS_URL,
            issuer: env.AUTH_ISSUER as string,
            timeoutMs: env.AUTH_JWKS_TIMEOUT_MS,
            cacheMaxAgeSeconds: env.AUTH_JWKS_CACHE_MAX_AGE_SECONDS,
            cooldownSeconds: env.AUTH_JWKS_COOLDOWN_SECONDS,
          }
        : undefined,
      roleClaim: env.AUTH_ROLE_CLAIM,
      subjectClaim: env.AUTH_SUBJECT_CLAIM,
      clockSkewSeconds: env.AUTH_CLOCK_SKEW_SECONDS,
      tokenMaxLength: authTokenMaxLength,
      verifiedTokenCacheEntries: env.AUTH_VERIFIED_TOKEN_CACHE_ENTRIES,
      verifiedTokenCacheSeconds: env.AUTH_VERIFIED_TOKEN_CACHE_SECONDS,
    },
    pagination: { cursorSecret: env.CURSOR_SECRET ?? env.AUTH_JWT_SECRET ?? developmentTokenSecret },
    tiers: {
      STARTER: { monthlySeconds: env.TIER_STARTER_MONTHLY_SECONDS, maxDevices: env.TIER_STARTER_MAX_DEVICES },
      PRO: { monthlySeconds: env.TIER_PRO_MONTHLY_SECONDS, maxDevices: env.TIER_PRO_MAX_DEVICES },
      STUDIO: { monthlySeconds: env.TIER_STUDIO_MONTHLY_SECONDS, maxDevices: env.TIER_STUDIO_MAX_DEVICES },
    },
    licenses: {
      keyGenerationAttempts: env.LICENSE_KEY_GENERATION_ATTEMPTS,
      fingerprintMaxLength: env.FINGERPRINT_MAX_LENGTH,
      deviceNameMaxLength: env.DEVICE_NAME_MAX_LENGTH,
      activationFailureWindowSeconds: env.ACTIVATION_FAILURE_WINDOW_SECONDS,
      activationFailuresPerAddressMax: env.ACTIVATION_FAILURES_PER_ADDRESS_MAX,
      activationFailuresPerKeyMax: env.ACTIVATION_FAILURES_PER_KEY_MAX,
      signingKeyPems: env.LICENSE_SIGNING_KEYS ? signingKeyPems(env.LICENSE_SIGNING_KEYS) : [],
      developmentSigningKeyFile: env.LICENSE_SIGNING_KEY_FILE,
      certificateIssuer: env.LICENSE_CERTIFICATE_ISSUER,
      certificateTtlSeconds: env.LICENSE_CERTIFICATE_TTL_SECONDS,
      disputedCertificateTtlSeconds: env.LICENSE_CERTIFICATE_DISPUTED_TTL_SECONDS,
      disputeMemoryDays: env.LICENSE_DISPUTE_MEMORY_DAYS,
      offlineDevicesPerSeat: env.LICENSE_OFFLINE_DEVICES_PER_SEAT,
    },
    trustProxy: env.TRUST_PROXY,
    mail: { smtpUrl: env.SMTP_URL, from: env.MAIL_FROM, directory: env.MAIL_DIRECTORY },
    outbox: {
      enabled: env.OUTBOX_ENABLED,
      pollIntervalMs: env.OUTBOX_POLL_INTERVAL_MS,
      batchSize: env.OUTBOX_BATCH_SIZE,
      leaseSeconds: env.OUTBOX_LEASE_SECONDS,
      maxAttempts: env.OUTBOX_MAX_ATTEMPTS,
      backoffBaseMs: env.OUTBOX_BACKOFF_BASE_MS,
      backoffMaxMs: env.OUTBOX_BACKOFF_MAX_MS,
      sendTimeoutMs: env.OUTBOX_SEND_TIMEOUT_MS,
    },
    credits: {
      reservationTtlSeconds: env.RESERVATION_TTL_SECONDS,
      reservationMaxSeconds: env.RESERVATION_MAX_SECONDS,
      actualMaxSeconds: env.ACTUAL_MAX_SECONDS,
      activeReservationsPerCustomerMax: env.ACTIVE_RESERVATIONS_PER_CUSTOMER_MAX,
      adjustmentMaxAbsSeconds: env.ADJUSTMENT_MAX_ABS_SECONDS,
      balanceMaxSeconds: env.BALANCE_MAX_SECONDS,
      usageRangeMaxDays: env.USAGE_RANGE_MAX_DAYS,
      usageBucketsMax: env.USAGE_BUCKETS_MAX,
      lowBalanceEmailsPerDay: env.LOW_BALANCE_EMAILS_PER_DAY,
      subscriptionGraceSeconds: env.SUBSCRIPTION_GRACE_SECONDS,
      subscriptionRolloverMaxPeriods: env.SUBSCRIPTION_ROLLOVER_MAX_PERIODS,
      purchaseGrantTtlDays: env.PURCHASE_GRANT_TTL_DAYS,
      expiryNoticeDays: env.EXPIRY_NOTICE_DAYS,
      grantsLiveMax: env.CREDIT_GRANTS_LIVE_MAX,
    },
    limits: {
      endpointMaxLength: env.ENDPOINT_MAX_LENGTH,
      noteMaxLength: env.NOTE_MAX_LENGTH,
      reasonMaxLength: env.REASON_MAX_LENGTH,
      idempotencyKeyMaxLength: env.IDEMPOTENCY_KEY_MAX_LENGTH,
      emailMaxLength: env.EMAIL_MAX_LENGTH,
      stripeIdMaxLength: env.STRIPE_ID_MAX_LENGTH,
      searchQueryMaxLength: env.SEARCH_QUERY_MAX_LENGTH,
      pageSizeMax: env.PAGE_SIZE_MAX,
    },
    transactions: {
      maxAttempts: env.TX_MAX_ATTEMPTS,
      backoffBaseMs: env.TX_BACKOFF_BASE_MS,
      backoffMaxMs: env.TX_BACKOFF_MAX_MS,
      maxWaitMs: env.TX_MAX_WAIT_MS,
      timeoutMs: env.TX_TIMEOUT_MS,
      lockTimeoutMs: env.TX_LOCK_TIMEOUT_MS,
      commitWaitMinMs: env.TX_COMMIT_WAIT_MIN_MS,
      unavailableRetryAfterSeconds: env.UNAVAILABLE_RETRY_AFTER_SECONDS,
    },
    sweeper: { enabled: env.SWEEPER_ENABLED, intervalMs: env.SWEEPER_INTERVAL_MS, batchSize: env.SWEEPER_BATCH_SIZE },
    metrics: { token: env.METRICS_TOKEN },
    graphql: {
      maxDepth: env.QUERY_MAX_DEPTH,
      maxCost: env.QUERY_MAX_COST,
      maxAliases: env.QUERY_MAX_ALIASES,
      maxDirectives: env.QUERY_MAX_DIRECTIVES,
      maxTokens: env.QUERY_MAX_TOKENS,
      maxNesting: env.QUERY_MAX_NESTING,
      maxVariablesNesting: env.VARIABLES_MAX_NESTING,
      introspection: env.INTROSPECTION ?? (env.NODE_ENV === "production" ? "staff" : "everyone"),
    },
    callerLimits: {
      resendLicensePerHourMax: env.RESEND_LICENSE_PER_HOUR_MAX,
      checkoutPerHourMax: env.CHECKOUT_PER_HOUR_MAX,
      certificateCheckoutsPerDevicePerHour: env.CERTIFICATE_CHECKOUTS_PER_DEVICE_PER_HOUR,
    },
    stripe: {
      secretKey: env.STRIPE_SECRET_KEY ?? developmentStripeSecretKey,
      webhookSecret: env.STRIPE_WEBHOOK_SECRET ?? developmentStripeWebhookSecret,
      api: { host: env.STRIPE_API_HOST, port: env.STRIPE_API_PORT, protocol: env.STRIPE_API_PROTOCOL },
      timeoutMs: env.STRIPE_TIMEOUT_MS,
      webhookMaxBytes: env.STRIPE_WEBHOOK_MAX_BYTES,
      webhookToleranceSeconds: env.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
      planTable: planTableSchema.parse(JSON.parse(env.STRIPE_PLANS)),
      zeroAmountInvoicesGrant: env.ZERO_AMOUNT_INVOICES_GRANT,
    },
    dashboard: {
      origins: env.DASHBOARD_ORIGINS.split(",").map((origin) => origin.trim()).filter(Boolean),
      urlMaxLength: env.CHECKOUT_URL_MAX_LENGTH,
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    auditTimeoutMs: env.AUDIT_TIMEOUT_MS,
    consoleEnabled: env.CONSOLE_ENABLED,
  };
}
