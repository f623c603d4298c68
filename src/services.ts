// Wires stores and services together: the one place that knows what depends on what.
import type { Logger } from "pino";
import type { Config } from "./config";
import { Transactor, type Database } from "./platform/database";
import { CustomerSerializer } from "./platform/customer-serializer";
import { CreditsService } from "./modules/credits/credits.service";
import { CreditsStore } from "./modules/credits/credits.store";
import { CustomersService } from "./modules/customers/customers.service";
import { CustomersStore } from "./modules/customers/customers.store";

export interface Services {
  transactor: Transactor;
  customerSerializer: CustomerSerializer;
  customers: CustomersService;
  credits: CreditsService;
}

export function createServices(
  config: Config,
  databaseUrl: string,
  database: Database,
  logger: Logger,
  now: () => Date = () => new Date(),
): Services {
  const transactor = new Transactor(database, config.transactions);
  const customerSerializer = new CustomerSerializer(databaseUrl, {
    lockSessions: config.database.lockSessions,
    lockTimeoutMs: config.transactions.lockTimeoutMs,
  }, (error) => logger.warn({ err: error }, "idle lock session lost"));
  const customersStore = new CustomersStore();
  const credits = new CreditsService({
    database,
    transactor,
    store: new CreditsStore(),
    customers: customersStore,
    customerSerializer,
    config,
    now,
  });
  const customers = new CustomersService({ database, transactor, store: customersStore, credits, config });
  return { transactor, customerSerializer, customers, credits };
}
