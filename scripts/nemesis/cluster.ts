// The system under test: PostgreSQL (pg_ctl, embedded package's binaries), the partition proxy
// in front of it, a fake of Stripe's API on loopback (the SDK is pointed at it, so nothing
// leaves the machine), and the service instances, all reaching PostgreSQL through the proxy.
import crypto from "node:crypto";
import path from "node:path";
import { loadConfig } from "../../src/config";
import { mintToken } from "../../src/platform/auth";
import { createDatabase } from "../../src/platform/database-admin";
import { startFakeStripe, type FakeStripe } from "../../test/support/fake-stripe";
import { freePort } from "../../test/support/test-database";
import { Instance, type InstanceExit } from "./instances";
import { NemesisPostgres } from "./postgres";
import { PartitionProxy } from "./proxy";

/** The service's transaction lifetime; the latency check allows this plus a margin. */
export const txTimeoutMs = 5000;
export const webhookSecret = "whsec_nemesis_signing_secret_for_loopback";
export const packPriceId = "price_nemesis_pack";
export const packHours = 1;
export const starterSeats = 2;
/** Short, so that abandoned reservations expire and come back during the run. */
const reservationTtlSeconds = 30;
const tokenTtlSeconds = 24 * 3600;
const instanceStopGraceMs = 10_000;

export interface ClusterOptions {
  instances: number;
  artifactsDirectory: string;
  nowMs: () => number;
  onUnexpectedExit: (exit: InstanceExit) => void;
}

export class Cluster {
  readonly instances: Instance[] = [];
  private readonly auth = loadConfig({ NODE_ENV: "test" }).auth;

  private constructor(
    readonly postgres: NemesisPostgres,
    readonly proxy: PartitionProxy,
    private readonly stripe: FakeStripe,
  ) {}

  /** Starts everything; instance 0 first (it applies the migrations), then the others together. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const postgres = await NemesisPostgres.create(await freePort());
    await postgres.start();
    await createDatabase(postgres.urlFor());
    const proxy = await PartitionProxy.start(postgres.port);
    const stripe = await startFakeStripe();
    const cluster = new Cluster(postgres, proxy, stripe);
    const environment = instanceEnvironment(postgres.urlFor(undefined, proxy.port), stripe.port, options.artifactsDirectory);
    for (let index = 0; index < options.instances; index += 1) {
      const logFile = path.join(options.artifactsDirectory, `instance-${index}.log`);
      cluster.instances.push(new Instance(index, await freePort(), environment, logFile, options.nowMs, options.onUnexpectedExit));
    }
    await cluster.instances[0]!.start();
    await Promise.all(cluster.instances.slice(1).map((instance) => instance.start()));
    return cluster;
  }

  /** The database straight, not through the proxy: for the fault injector and the checks. */
  get directDatabaseUrl(): string {
    return this.postgres.urlFor();
  }

  baseUrl(instance: number): string {
    return this.instances[instance]!.baseUrl;
  }

  staffToken(): string {
    return mintToken(this.auth, "staff", "nemesis", tokenTtlSeconds);
  }

  customerToken(customerId: string): string {
    return mintToken(this.auth, "customer", customerId, tokenTtlSeconds);
  }

  /** Everything stopped, in reverse order of start; each step runs even if another failed. */
  async stop(): Promise<void> {
    await Promise.allSettled(this.instances.map((instance) => instance.stop(instanceStopGraceMs)));
    await Promise.allSettled([this.stripe.close(), this.proxy.close()]);
    await this.postgres.destroy();
  }
}

function instanceEnvironment(databaseUrl: string, stripePort: number, artifactsDirectory: string): Record<string, string> {
  const signingKey = crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  return {
    NODE_ENV: "test",
    LOG_LEVEL: "warn",
    DATABASE_URL: databaseUrl,
    TX_TIMEOUT_MS: String(txTimeoutMs),
    RESERVATION_TTL_SECONDS: String(reservationTtlSeconds),
    SWEEPER_INTERVAL_MS: "1000",
    OUTBOX_POLL_INTERVAL_MS: "500",
    STRIPE_SECRET_KEY: "sk_test_nemesis_fake_stripe_on_loopback",
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    STRIPE_API_HOST: "127.0.0.1",
    STRIPE_API_PORT: String(stripePort),
    STRIPE_API_PROTOCOL: "http",
    STRIPE_PLANS: JSON.stringify({ [packPriceId]: { type: "hours", hours: packHours } }),
    MAIL_DIRECTORY: path.join(artifactsDirectory, "mail"),
    // Every instance signs with the same key, as production requires.
    LICENSE_SIGNING_KEYS: signingKey,
    TIER_STARTER_MAX_DEVICES: String(starterSeats),
    // The load activates the same machines again and again: these limits are not under test here.
    ACTIVATION_FAILURES_PER_ADDRESS_MAX: "100000",
    ACTIVATION_FAILURES_PER_KEY_MAX: "100000",
    CERTIFICATE_CHECKOUTS_PER_DEVICE_PER_HOUR: "1000",
  };
}
