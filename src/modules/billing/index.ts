// The billing module's front door: Stripe Checkout and the billing portal for customers, the
// Stripe webhook inbox, and the support tools for staff. It owns the stripe_event,
// payment_effect and stripe_subscription tables; only billing.store.ts writes them.
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { Config } from "../../config";
import type { Database, Transactor } from "../../platform/database";
import type { OutboxStore } from "../../platform/outbox/outbox.store";
import { PermanentJobError, type OutboxHandler } from "../../platform/outbox/outbox.worker";
import type { RateLimiter } from "../../platform/rate-limiter";
import type { CreditsService } from "../credits";
import type { CustomersService } from "../customers";
import type { LicensesService } from "../licenses";
import { BillingStore } from "./billing.store";
import { CheckoutService } from "./checkout.service";
import { stripeMetadataJobKind } from "./events";
import { plansOf } from "./plan";
import { createStripeClient, type StripeClient } from "./stripe-client";
import { WebhooksService } from "./webhooks.service";

export { billingResolvers } from "./billing.resolvers";
export { billingPermissions } from "./billing.permissions";
export { billingInvariants } from "./billing.audit";
export { stripeWebhookRouter } from "./webhook.route";
export type { CheckoutService } from "./checkout.service";
export type { WebhooksService } from "./webhooks.service";
export type { StripeClient } from "./stripe-client";

export const billingTypeDefs = fs.readFileSync(path.join(__dirname, "schema.graphql"), "utf8");

export interface BillingDependencies {
  config: Config;
  database: Database;
  transactor: Transactor;
  customers: CustomersService;
  credits: CreditsService;
  licenses: LicensesService;
  outbox: OutboxStore;
  hourlyLimits: RateLimiter;
  logger: Logger;
  now: () => Date;
}

export interface Billing {
  stripe: StripeClient;
  webhooks: WebhooksService;
  checkout: CheckoutService;
  /** The outbox jobs this module queues, by kind: writing Splice's ids onto the Stripe customer. */
  outboxJobs: Record<string, OutboxHandler>;
}

export function createBilling(deps: BillingDependencies): Billing {
  const { config, customers, licenses } = deps;
  const stripe = createStripeClient(config.stripe);
  const store = new BillingStore();
  const plans = plansOf(config);
  const webhooks = new WebhooksService({
    database: deps.database,
    transactor: deps.transactor,
    store,
    handlerContext: { config, plans, store, customers, credits: deps.credits, licenses, outbox: deps.outbox, stripe },
    logger: deps.logger,
    now: deps.now,
    pageSizeMax: config.limits.pageSizeMax,
  });
  const checkout = new CheckoutService(stripe, customers, config, plans, deps.hourlyLimits);
  const writeBackMetadata: OutboxHandler = async (job) => {
    const customerId = job.payload.customerId;
    if (typeof customerId !== "string") throw new PermanentJobError("Stripe metadata job without customerId");
    const customer = await customers.findById(customerId);
    if (!customer?.stripeCustomerId) throw new PermanentJobError(`customer ${customerId} has no Stripe customer`);
    const license = await licenses.licenseOf(customerId);
    await stripe.customers.update(customer.stripeCustomerId, {
      metadata: { splice_customer_id: customer.id, splice_license_key: license?.key ?? "" },
    });
  };
  return { stripe, webhooks, checkout, outboxJobs: { [stripeMetadataJobKind]: writeBackMetadata } };
}
