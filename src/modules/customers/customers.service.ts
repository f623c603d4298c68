// Customers: creation (with the tier's monthly hours granted through the ledger), the
// caller's own account, and the support search.
import { assert } from "../../platform/assert";
import type { Config } from "../../config";
import { actorOf, type Caller } from "../../platform/auth";
import { Policy } from "../../platform/authorization";
import type { Database, Transaction, Transactor } from "../../platform/database";
import { badInput, fail, succeed, type Outcome } from "../../platform/failures";
import type { Page, Pager } from "../../platform/pagination";
import { uuidPattern } from "../../platform/validation";
import type { CustomerRecord, Tier } from "./customer";
import { customersPermissions } from "./customers.permissions";
import type { NewCustomer } from "./customers.store";
import type { CustomersStore } from "./customers.store";

export interface CreateCustomerInput {
  email: string;
  tier?: Tier | null;
  stripeCustomerId?: string | null;
  initialSeconds?: number | null;
}

/**
 * What creating a customer needs of the credits module, which owns balances: a balance row,
 * and the starting seconds as a GRANT. Declared here, implemented there, wired in services.ts.
 */
export interface CustomerBalances {
  openBalanceInTransaction(tx: Transaction, customerId: string): Promise<void>;
  grantInTransaction(
    tx: Transaction,
    customerId: string,
    seconds: number,
    details: { kind: "GRANT"; source: "INITIAL"; expiresAt: null; origin: null; actor: string; note: string },
  ): Promise<Outcome<unknown>>;
}

/** Finds a license's owner for the support search; the licenses module owns that table. */
export interface LicenseOwnerLookup {
  customerIdForKey(rawKey: string): Promise<string | undefined>;
}

export interface CustomersDependencies {
  database: Database;
  pager: Pager;
  transactor: Transactor;
  store: CustomersStore;
  credits: CustomerBalances;
  licenses: LicenseOwnerLookup;
  config: Config;
}

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const stripeCustomerIdPattern = /^cus_[A-Za-z0-9]+$/;

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

const policy = new Policy(customersPermissions);

export class CustomersService {
  constructor(private readonly deps: CustomersDependencies) {}

  async create(caller: Caller, input: CreateCustomerInput): Promise<Outcome<CustomerRecord>> {
    const denied = policy.check("Mutation.createCustomer", caller);
    if (denied) return fail(denied);
    const checked = this.checkNewCustomer(input);
    if (!checked.ok) return checked;
    const { email, tier, stripeCustomerId, initialSeconds } = checked.value;
    return this.deps.transactor.serializable(async (tx) => {
      if (await this.deps.store.findByEmail(tx, email)) return badInput("email", "a customer with this email exists");
      if (stripeCustomerId && (await this.deps.store.findByStripeCustomerId(tx, stripeCustomerId))) {
        return badInput("stripeCustomerId", "a customer with this Stripe customer id exists");
      }
      const customer = await this.insert(tx, { email, tier, stripeCustomerId });
      if (initialSeconds > 0) {
        const note = input.initialSeconds === undefined || input.initialSeconds === null ? `${tier} monthly hours` : "initial balance";
        // A starting balance is an INITIAL grant that never expires.
        const granted = await this.deps.credits.grantInTransaction(tx, customer.id, initialSeconds, {
          kind: "GRANT",
          source: "INITIAL",
          expiresAt: null,
          origin: null,
          actor: actorOf(caller),
          note,
        });
        if (!granted.ok) return granted;
      }
      const created = await this.deps.store.findById(tx, customer.id);
      return created ? succeed(created) : fail({ code: "CUSTOMER_NOT_FOUND" });
    });
  }

  /**
   * The customer a Stripe customer id belongs to: found by that id, else an existing customer
   * with the same email and no Stripe id yet is linked, else a new one is created.
   */
  async findOrCreateForStripeInTransaction(tx: Transaction, stripeCustomerId: string, email: string | null): Promise<CustomerRecord> {
    const linked = await this.deps.store.findByStripeCustomerId(tx, stripeCustomerId);
    if (linked) return linked;
    const usable = email ? this.usableEmail(email) : undefined;
    const sameEmail = usable ? await this.deps.store.findByEmail(tx, usable) : undefined;
    if (sameEmail && !sameEmail.stripeCustomerId) return this.deps.store.linkStripeCustomer(tx, sameEmail.id, stripeCustomerId);
    // The address belongs to a customer of another Stripe account: keep both, this one without it.
    return this.insert(tx, { email: sameEmail ? null : usable ?? null, stripeCustomerId, tier: "STARTER" });
  }

  /**
   * The buyer of a guest checkout (no Stripe customer: Payment Links, guest mode), by the email
   * Stripe collected: an existing customer with that address, else a new one. A Stripe customer
   * that appears later with the same address is linked to it (findOrCreateForStripeInTransaction).
   */
  async findOrCreateForGuestInTransaction(tx: Transaction, email: string | null): Promise<CustomerRecord | undefined> {
    const usable = email ? this.usableEmail(email) : undefined;
    if (!usable) return undefined;
    return (await this.deps.store.findByEmail(tx, usable)) ?? this.insert(tx, { email: usable, stripeCustomerId: null, tier: "STARTER" });
  }

  /** A new customer with its balance at zero: the first seconds arrive as a GRANT. */
  private async insert(tx: Transaction, customer: NewCustomer): Promise<CustomerRecord> {
    const inserted = await this.deps.store.insert(tx, customer);
    await this.deps.credits.openBalanceInTransaction(tx, inserted.id);
    return inserted;
  }

  async setTierInTransaction(tx: Transaction, customerId: string, tier: Tier): Promise<void> {
    await this.deps.store.setTier(tx, customerId, tier);
  }

  async findById(customerId: string): Promise<CustomerRecord | undefined> {
    return this.deps.store.findById(this.deps.database, customerId);
  }

  /** The owner of a row that references it (a reservation, a license): a foreign key says it exists. */
  async owner(customerId: string): Promise<CustomerRecord> {
    const customer = await this.deps.store.findById(this.deps.database, customerId);
    assert(customer, `customer ${customerId} referenced but not found`);
    return customer;
  }

  async linkStripeCustomer(customerId: string, stripeCustomerId: string): Promise<CustomerRecord> {
    return this.deps.transactor.serializable(async (tx) => {
      const current = await this.deps.store.findById(tx, customerId);
      if (current?.stripeCustomerId) return current;
      return this.deps.store.linkStripeCustomer(tx, customerId, stripeCustomerId);
    });
  }

  /** The account of a customer or device token; staff have none. */
  async me(caller: Caller): Promise<Outcome<CustomerRecord | null>> {
    const denied = policy.check("Query.me", caller);
    if (denied) return fail(denied);
    if (caller.kind !== "customer" && caller.kind !== "device") return succeed(null);
    return succeed((await this.deps.store.findById(this.deps.database, caller.customerId)) ?? null);
  }

  async findForStaff(caller: Caller, customerId: string): Promise<Outcome<CustomerRecord | null>> {
    const denied = policy.check("Query.customer", caller);
    if (denied) return fail(denied);
    if (!uuidPattern.test(customerId)) return succeed(null);
    return succeed((await this.deps.store.findById(this.deps.database, customerId)) ?? null);
  }

  async search(caller: Caller, query: string, first: number, after: string | null | undefined): Promise<Outcome<Page<CustomerRecord>>> {
    const denied = policy.check("Query.searchCustomers", caller);
    if (denied) return fail(denied);
    const trimmed = query.trim();
    const { searchQueryMaxLength } = this.deps.config.limits;
    if (trimmed.length < 1 || trimmed.length > searchQueryMaxLength) {
      return badInput("query", `query must be 1 to ${searchQueryMaxLength} characters`);
    }
    // A cursor belongs to its search; case aside, since emails match without it.
    const scope = trimmed.toLowerCase();
    const page = this.deps.pager.request("customer", scope, first, after);
    if (!page.ok) return page;
    const licenseOwner = await this.deps.licenses.customerIdForKey(trimmed);
    const search = {
      emailFragment: trimmed.toLowerCase(),
      exactText: trimmed,
      exactId: licenseOwner ?? (uuidPattern.test(trimmed) ? trimmed.toLowerCase() : undefined),
    };
    const rows = await this.deps.store.search(this.deps.database, search, page.value);
    return succeed(this.deps.pager.page("customer", scope, rows, page.value, (row) => row.seq));
  }

  /** The address in its stored form, or undefined when it is not a plausible address within the limit. */
  private usableEmail(email: string): string | undefined {
    const normalised = normaliseEmail(email);
    return normalised.length <= this.deps.config.limits.emailMaxLength && emailPattern.test(normalised) ? normalised : undefined;
  }

  private checkNewCustomer(input: CreateCustomerInput) {
    const { limits, tiers, credits } = this.deps.config;
    const email = this.usableEmail(input.email);
    if (!email) return badInput("email", `email must be an address of at most ${limits.emailMaxLength} characters`);
    const stripeCustomerId = input.stripeCustomerId ?? null;
    if (stripeCustomerId !== null && (stripeCustomerId.length > limits.stripeIdMaxLength || !stripeCustomerIdPattern.test(stripeCustomerId))) {
      return badInput("stripeCustomerId", "stripeCustomerId must look like cus_...");
    }
    const tier = input.tier ?? "STARTER";
    const initialSeconds = input.initialSeconds ?? tiers[tier].monthlySeconds;
    if (!Number.isSafeInteger(initialSeconds) || initialSeconds < 0 || initialSeconds > credits.balanceMaxSeconds) {
      return badInput("initialSeconds", `initialSeconds must be from 0 to ${credits.balanceMaxSeconds}`);
    }
    return succeed({ email, tier, stripeCustomerId, initialSeconds });
  }
}
