// One owner per table: each table is named only in its owning module's store and audit (SQL or
// the Prisma model API). Other modules go through the owner's front door.
import fs from "node:fs";
import path from "node:path";

const modulesDirectory = path.resolve(__dirname, "..", "..", "src", "modules");

// Also the table ARCHITECTURE.md prints; platform/ owns outbox_job, outbox_attempt, rate_limit_window.
const owners: Record<string, string[]> = {
  customers: ["customer"],
  credits: ["credit_balance", "credit_grant", "credit_reservation", "credit_reservation_hold", "ledger_entry"],
  licenses: ["license", "device", "license_event"],
  billing: ["stripe_event", "payment_effect", "stripe_subscription"],
};
const modelNames: Record<string, string> = {
  customer: "customer",
  credit_balance: "creditBalance",
  credit_grant: "creditGrant",
  credit_reservation: "creditReservation",
  credit_reservation_hold: "creditReservationHold",
  ledger_entry: "ledgerEntry",
  license: "license",
  device: "device",
  license_event: "licenseEvent",
  stripe_event: "stripeEvent",
  payment_effect: "paymentEffect",
  stripe_subscription: "stripeSubscription",
};

function sourceFiles(directory: string): string[] {
  return fs.readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** Tables a file names in SQL (FROM, JOIN, UPDATE, INTO) or through the Prisma model API. */
function tablesNamedIn(text: string): Set<string> {
  const named = new Set<string>();
  for (const match of text.matchAll(/\b(?:FROM|JOIN|UPDATE|INTO)\s+"?([a-z_]+)"?/g)) named.add(match[1]!);
  for (const [table, model] of Object.entries(modelNames)) {
    if (new RegExp(`\\b(?:db|tx|database)\\.${model}\\.`).test(text)) named.add(table);
  }
  return named;
}

it("lets each module touch only its own tables", () => {
  const allTables = new Set(Object.values(owners).flat());
  const trespasses: string[] = [];
  for (const [moduleName, ownTables] of Object.entries(owners)) {
    for (const file of sourceFiles(path.join(modulesDirectory, moduleName))) {
      for (const table of tablesNamedIn(fs.readFileSync(file, "utf8"))) {
        if (allTables.has(table) && !ownTables.includes(table)) trespasses.push(`${path.relative(modulesDirectory, file)} names ${table}`);
      }
    }
  }
  expect(trespasses).toEqual([]);
});

it("finds a trespass when there is one (the check itself can fail)", () => {
  expect(tablesNamedIn("SELECT c.tier FROM license l JOIN customer c ON c.id = l.customer_id")).toEqual(new Set(["license", "customer"]));
  expect(tablesNamedIn("await db.ledgerEntry.findMany({})")).toEqual(new Set(["ledger_entry"]));
});

it("names every table of the schema in the ownership table or in platform/", () => {
  const schema = fs.readFileSync(path.resolve(__dirname, "..", "..", "prisma", "schema.prisma"), "utf8");
  const mapped = [...schema.matchAll(/@@map\("([a-z_]+)"\)/g)].map((match) => match[1]!);
  const platformTables = ["outbox_job", "outbox_attempt", "rate_limit_window"];
  expect(mapped.filter((table) => !Object.values(owners).flat().includes(table) && !platformTables.includes(table))).toEqual([]);
});
