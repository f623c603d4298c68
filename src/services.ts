// Wires stores and services together: the one place that knows what depends on what.
import type { Logger } from "pino";
import type { Config } from "./config";
import { Pager } from "./platform/pagination";
import { BillingStore } from "./modules/billing/billing.store";
import { CheckoutService } from "./modules/billing/checkout.service";
import { stripeMetadataJobKind } from "./modules/billing/event-handlers";
import { createStripeClient, type StripeClient } from "./modules/billing/stripe-client";
import { WebhooksService } from "./modules/billing/webhooks.service";
import { CreditsService } from "./modules/credits/credits.service";
import { CreditsStore } from "./modules/credits/credits.store";
import { CustomersService } from "./modules/customers/customers.service";
import { CustomersStore } from "./modules/customers/customers.store";
import { licenseEmailJobKind } from "./modules/licenses/license";
import { LicensesService } from "./modules/licenses/licenses.service";
import { LicensesStore } from "./modules/licenses/licenses.store";
import { CustomerSerializer } from "./platform/customer-serializer";
import { Transactor, type Database } from "./platform/database";
import { createMailer, type Mailer } from "./platform/mailer";
import { OutboxStore } from "./platform/outbox/outbox.store";
import { OutboxWorker, PermanentJobError } from "./platform/outbox/outbox.worker";
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
}

export function createServices(config: Config, databaseUrl: string, database: Database, logger: Logger, options: ServiceOptions = {}): Services {
  const now = options.now ?? (() => new Date());
  const transactor = new Transactor(database, config.transactions);
  const customerSerializer = new CustomerSerializer(
    databaseUrl,
    { lockSessions: config.database.lockSessions, lockTimeoutMs: config.transactions.lockTimeoutMs },
    (error) => logger.warn({ error: { message: error.message } }, "a customer lock session was lost; the pool opens another when needed"),
  );
  const pager = new Pager(config.pagination.cursorSecret, config.limits.pageSizeMax);
  const customersStore = new CustomersStore();
  const outbox = new OutboxStore();
  const mailer = options.mailer ?? createMailer(config.mail, logger);
  const credits = new CreditsService({
    database,
    pager,
    transactor,
    store: new CreditsStore(),
    customers: customersStore,
    customerSerializer,
    config,
    now,
  });
  const hourlyLimits = new RateLimiter(database, 3600);
  const licenses = new LicensesService({
    database,
    pager,
    transactor,
    store: new LicensesStore(),
    outbox,
    customerSerializer,
    activationFailures: new RateLimiter(database, config.licenses.activationFailureWindowSeconds),
    hourlyLimits,
    mailer,
    config,
    now,
  });
  const customers = new CustomersService({ database, pager, transactor, store: customersStore, credits, licenses, config });
  const outboxWorker = new OutboxWorker(database, outbox, config.outbox, logger, now);
  outboxWorker.register(licenseEmailJobKind, async (job) => {
    const licenseId = job.payload.licenseId;
    if (typeof licenseId !== "string") throw new PermanentJobError("license email job without licenseId");
    await licenses.deliverKey(licenseId);
  });
  const stripe = createStripeClient(config.stripe);
  const billingStore = new BillingStore();
  const webhooks = new WebhooksService({
    database,
    transactor,
    store: billingStore,
    handlerContext: { config, store: billingStore, customers, credits, licenses, outbox, stripe },
    logger,
    now,
    pageSizeMax: config.limits.pageSizeMax,
  });
  outboxWorker.register(stripeMetadataJobKind, async (job) => {
    const customerId = job.payload.customerId;
    if (typeof customerId !== "string") throw new PermanentJobError("Stripe metadata job without customerId");
    const customer = await customers.findById(customerId);
    if (!customer?.stripeCustomerId) throw new PermanentJobError(`customer ${customerId} has no Stripe customer`);
    const license = await licenses.licenseOf(customerId);
    await stripe.customers.update(customer.stripeCustomerId, {
      metadata: { splice_customer_id: customer.id, splice_license_key: license?.key ?? "" },
    });
  });
  const checkout = new CheckoutService(stripe, customers, config, hourlyLimits);
  return {
    transactor,
    customerSerializer,
    customers,
    credits,
    licenses,
    outbox,
    outboxWorker,
    mailer,
    stripe,
    webhooks,
    checkout,
  };
}
