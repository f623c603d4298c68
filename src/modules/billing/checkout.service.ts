// Purchases started from the dashboard: a Stripe Checkout session for a plan or hour pack,
// and the Stripe billing portal. Stripe calls happen outside any transaction; the Stripe
// customer is created once per Splice customer (Stripe idempotency key), then linked. A request
// Stripe refuses (bad API key, unknown price at Stripe) is PAYMENT_PROVIDER_ERROR (502: retrying
// cannot help); Stripe unreachable, timing out or failing on its side is SERVICE_UNAVAILABLE.
import Stripe from "stripe";
import { actorOf, type Caller } from "../../platform/auth";
import { assert } from "../../platform/assert";
import { Policy } from "../../platform/authorization";
import { billingPermissions } from "./billing.permissions";
import type { Config } from "../../config";
import { badInput, fail, ServiceUnavailableError, succeed, type Outcome } from "../../platform/failures";
import type { CustomerRecord, CustomersService } from "../customers";
import type { Plan } from "./plan";
import type { RateLimiter } from "../../platform/rate-limiter";
import type { StripeClient } from "./stripe-client";

export interface CheckoutInput {
  priceId: string;
  successUrl: string;
  cancelUrl: string;
}

const policy = new Policy(billingPermissions);

export class CheckoutService {
  constructor(
    private readonly stripe: StripeClient,
    private readonly customers: CustomersService,
    private readonly config: Config,
    private readonly plans: ReadonlyMap<string, Plan>,
    private readonly hourlyLimits: RateLimiter,
  ) {}

  async start(caller: Caller, input: CheckoutInput): Promise<Outcome<{ id: string; url: string }>> {
    const customer = await this.buyingCustomer(caller, "Mutation.startCheckout");
    if (!customer.ok) return customer;
    const plan = this.plans.get(input.priceId);
    if (!plan) return badInput("priceId", "unknown price");
    const badUrl = this.checkUrl("successUrl", input.successUrl) ?? this.checkUrl("cancelUrl", input.cancelUrl);
    if (badUrl) return badUrl;
    const linked = await this.withStripeCustomer(customer.value);
    if (!linked.ok) return linked;
    const session = await this.call(() =>
      this.stripe.checkout.sessions.create({
        mode: plan.type === "subscription" ? "subscription" : "payment",
        customer: linked.value.stripeCustomerId!,
        line_items: [{ price: input.priceId, quantity: 1 }],
        success_url: input.successUrl,
        cancel_url: input.cancelUrl,
        client_reference_id: linked.value.id,
        metadata: { splice_customer_id: linked.value.id, splice_price_id: input.priceId, started_by: actorOf(caller) },
      }),
    );
    if (!session.ok) return session;
    if (!session.value.url) throw new ServiceUnavailableError("Stripe returned a checkout session without a URL");
    return succeed({ id: session.value.id, url: session.value.url });
  }

  async billingPortal(caller: Caller, returnUrl: string): Promise<Outcome<{ url: string }>> {
    const customer = await this.buyingCustomer(caller, "Mutation.openBillingPortal");
    if (!customer.ok) return customer;
    const badUrl = this.checkUrl("returnUrl", returnUrl);
    if (badUrl) return badUrl;
    const linked = await this.withStripeCustomer(customer.value);
    if (!linked.ok) return linked;
    const session = await this.call(() => this.stripe.billingPortal.sessions.create({ customer: linked.value.stripeCustomerId!, return_url: returnUrl }));
    return session.ok ? succeed({ url: session.value.url }) : session;
  }

  /** The customer buying; each call counts against their hourly limit (it costs Stripe calls). */
  private async buyingCustomer(caller: Caller, operation: "Mutation.startCheckout" | "Mutation.openBillingPortal"): Promise<Outcome<CustomerRecord>> {
    const denied = policy.check(operation, caller);
    if (denied) return fail(denied);
    assert(caller.kind === "customer", "the policy admits customer tokens only");
    const limited = await this.hourlyLimits.admit(`checkout:${caller.customerId}`, this.config.callerLimits.checkoutPerHourMax, new Date());
    if (limited) return fail(limited);
    const customer = await this.customers.findById(caller.customerId);
    return customer ? succeed(customer) : fail({ code: "CUSTOMER_NOT_FOUND" });
  }

  private async withStripeCustomer(customer: CustomerRecord): Promise<Outcome<CustomerRecord>> {
    if (customer.stripeCustomerId) return succeed(customer);
    const created = await this.call(() =>
      this.stripe.customers.create(
        { email: customer.email ?? undefined, metadata: { splice_customer_id: customer.id } },
        { idempotencyKey: `splice-customer-${customer.id}` },
      ),
    );
    if (!created.ok) return created;
    return succeed(await this.customers.linkStripeCustomer(customer.id, created.value.id));
  }

  /** Return URLs must lead back to the dashboard. */
  private checkUrl(field: string, url: string) {
    const allowed = this.config.dashboard.origins.some((origin) => url === origin || url.startsWith(`${origin}/`));
    if (url.length > this.config.dashboard.urlMaxLength || !allowed) {
      return badInput(field, `${field} must be a URL of the dashboard (${this.config.dashboard.origins.join(", ")})`);
    }
    return undefined;
  }

  private async call<T>(request: () => Promise<T>): Promise<Outcome<T>> {
    try {
      return succeed(await request());
    } catch (error) {
      if (isRefusal(error)) return fail({ code: "PAYMENT_PROVIDER_ERROR", message: `Stripe refused the request: ${withoutKeys(error.message)}` });
      throw new ServiceUnavailableError("Stripe did not answer as expected", { cause: error });
    }
  }
}

/** What Stripe answered with a refusal that the same request would get again. */
function isRefusal(error: unknown): error is Stripe.errors.StripeError {
  return (
    error instanceof Stripe.errors.StripeAuthenticationError ||
    error instanceof Stripe.errors.StripePermissionError ||
    error instanceof Stripe.errors.StripeInvalidRequestError
  );
}

/** Stripe's messages may quote the key that was used; none reaches a client. */
function withoutKeys(message: string): string {
  return message.replace(/\b(sk|rk|pk)_(live|test)_[A-Za-z0-9*]+/g, "[key]");
}
