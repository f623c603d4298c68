// The webhook tests build events from a committed copy of Stripe's example objects; the copy
// must stay the objects of ../shared/stripe/fixtures3.json, unchanged.
import fs from "node:fs";
import { committedFixturesPath, sharedFixturesPath } from "../support/stripe-fixtures";

it("keeps the committed Stripe example objects identical to the shared fixtures3.json", () => {
  const committed = JSON.parse(fs.readFileSync(committedFixturesPath, "utf8")) as { resources: Record<string, unknown> };
  expect(Object.keys(committed.resources).sort()).toEqual(["charge", "checkout.session", "dispute", "invoice", "subscription"]);
  if (!fs.existsSync(sharedFixturesPath)) return;
  const shared = JSON.parse(fs.readFileSync(sharedFixturesPath, "utf8")) as { resources: Record<string, unknown> };
  for (const [name, example] of Object.entries(committed.resources)) expect({ name, example }).toEqual({ name, example: shared.resources[name] });
});
