// Stripe's own example objects (test/fixtures/stripe-fixtures.json: the resources of
// fixtures3.json from stripe/openapi that the webhook tests use, kept identical to
// ../shared/stripe/fixtures3.json by a test). Events are built from them so that they carry
// every field a real one does; tests change only ids, metadata, prices, amounts and states.
import fs from "node:fs";
import path from "node:path";

export const committedFixturesPath = path.resolve(__dirname, "..", "fixtures", "stripe-fixtures.json");
export const sharedFixturesPath = path.resolve(__dirname, "..", "..", "..", "shared", "stripe", "fixtures3.json");

export type StripeResource = "checkout.session" | "invoice" | "subscription" | "charge" | "dispute";

let resources: Record<string, Record<string, unknown>> | undefined;

/** A fresh copy of Stripe's example object of this kind, with the given fields replaced. */
export function fromStripeFixture<Changes extends Record<string, unknown>>(resource: StripeResource, changes: Changes): Record<string, unknown> & Changes {
  resources ??= (JSON.parse(fs.readFileSync(committedFixturesPath, "utf8")) as { resources: Record<string, Record<string, unknown>> }).resources;
  const example = resources[resource];
  if (!example) throw new Error(`no Stripe example object for ${resource}`);
  return { ...structuredClone(example), ...changes };
}
