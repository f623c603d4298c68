// Wires stores and services together: the one place that knows what depends on what.
import type { Config } from "./config";
import { Transactor, type Database } from "./platform/database";
import { KeyedMutex } from "./platform/keyed-mutex";
import { CreditsService } from "./modules/credits/credits.service";
import { CreditsStore } from "./modules/credits/credits.store";
import { CustomersService } from "./modules/customers/customers.service";
import { CustomersStore } from "./modules/customers/customers.store";

export interface Services {
  transactor: Transactor;
  customers: CustomersService;
  credits: CreditsService;
}

export function createServices(config: Config, database: Database, now: () => Date = () => new Date()): Services {
  const transactor = new Transactor(database, config.transactions);
  const customersStore = new CustomersStore();
  const credits = new CreditsService({
    database,
    transactor,
    store: new CreditsStore(),
    customers: customersStore,
    customerLocks: new KeyedMutex(),
    config,
    now,
  });
  const customers = new CustomersService({ database, transactor, store: customersStore, credits, config });
  return { transactor, customers, credits };
}
