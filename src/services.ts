// Wires the modules together through their front doors: the one place that knows what
// depends on what. No rule lives here.
import type { Logger } from "pino";
import type { Config } from "./config";
import { createBilling, type CheckoutService, type StripeClient, type WebhooksService } from "./modules/billing";
import { createCreditsService, creditsOutboxJobs, type CreditsService } from "./modules/credits";
import { createCustomerDirectory, createCustomersService, type CustomersService } from "./modules/customers";
import { createLicensesService, licensesOutboxJobs, type LicensesService } from "./modules/licenses";
import { CustomerSerializer } from "./platform/customer-serializer";
import { Transactor, type Database } from "./platform/database";
import { createMailer, type Mailer } from "./platform/mailer";
import { OutboxStore } from "./platform/outbox/outbox.store";
import { OutboxWorker } from "./platform/outbox/outbox.worker";
import { Pager } from "./platform/pagination";
import { RateLimiter } from "./platform/rate-limiter";

export interface Services {
  transactor: Transactor;
  customerSerializer: CustomerSerializer;
  customers: CustomersService;
  credits: CreditsService;
  licenses: LicensesService;
  outbox: OutboxStore;
  outboxWorker: OutboxWorker;
  mailer: Mailer;
  stripe: StripeClient;
  webhooks: WebhooksService;
  checkout: CheckoutService;
}

export interface ServiceOptions {
  now?: () => Date;
  /** Replaces the mailer built from configuration (tests inject failures through it). */
  mailer?: Mailer;
  /** License signing keys when configuration has none: development's generated key, a test's. */
  licenseSigningKeyPems?: readonly string[];
}

export function createServices(config: Config, databaseUrl: string, database: Database, logger: Logger, options: ServiceOptions = {}): Services {
  const now = options.now ?? (() => new Date());
  const transactor = new Transactor(database, config.transactions);
  const customerSerializer = new CustomerSerializer(
    databaseUrl,
    {
      lockSessions: config.database.lockSessions,
      lockTimeoutMs: config.transactions.lockTimeoutMs,
      queryTimeoutMs: config.database.timeouts.queryMs,
      heldSessionTimeoutMs: config.database.timeouts.idleInTransactionMs,
      contendedLockMs: config.database.contended.lockSeconds * 1000,
      contendedCustomersMax: config.database.contended.customersMax,
    },
    (error) => logger.warn({ error: { message: error.message } }, "a customer lock session was lost; the pool opens another when needed"),
    transactor,
    now,
  );
  const pager = new Pager(config.pagination.cursorSecret, config.limits.pageSizeMax);
  const directory = createCustomerDirectory();
  const outbox = new OutboxStore();
  const mailer = options.mailer ?? createMailer(config.mail, logger);
  const hourlyLimits = new RateLimiter(database, 3600);
  const dailyLimits = new RateLimiter(database, 86_400);
  const credits = createCreditsService({ database, pager, transactor, customers: directory, customerSerializer, outbox, mailer, dailyLimits, config, now });
  const signingKeyPems = options.licenseSigningKeyPems ?? config.licenses.signingKeyPems;
  const licenses = createLicensesService({
    database,
    pager,
    transactor,
    customers: directory,
    outbox,
    customerSerializer,
    activationFailures: new RateLimiter(database, config.licenses.activationFailureWindowSeconds),
    hourlyLimits,
    mailer,
    config,
    now,
  }, signingKeyPems);
  const customers = createCustomersService({ database, pager, transactor, credits, licenses, config });
  const billing = createBilling({ config, database, transactor, customers, credits, licenses, outbox, hourlyLimits, logger, now });
  const outboxWorker = new OutboxWorker(database, outbox, config.outbox, logger, now);
  const outboxJobs = { ...creditsOutboxJobs(credits), ...licensesOutboxJobs(licenses), ...billing.outboxJobs };
  for (const [kind, handler] of Object.entries(outboxJobs)) outboxWorker.register(kind, handler);
  return {
    transactor,
    customerSerializer,
    customers,
    credits,
    licenses,
    outbox,
    outboxWorker,
    mailer,
    stripe: billing.stripe,
    webhooks: billing.webhooks,
    checkout: billing.checkout,
  };
}
