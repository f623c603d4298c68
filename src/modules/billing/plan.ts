// What a Stripe price buys: a subscription tier with its monthly seconds, or an hour pack.
import type { Config, PlanSetting } from "../../config";
import type { Tier } from "../customers";

export type Plan =
  | { type: "subscription"; tier: Tier; monthlySeconds: number }
  | { type: "hours"; seconds: number };

const secondsPerHour = 3600;

export function planOf(setting: PlanSetting): Plan {
  return setting.type === "subscription"
    ? { type: "subscription", tier: setting.tier, monthlySeconds: setting.monthlyHours * secondsPerHour }
    : { type: "hours", seconds: setting.hours * secondsPerHour };
}

/** The plan table by Stripe price id, from STRIPE_PLANS. */
export function plansOf(config: Config): ReadonlyMap<string, Plan> {
  return new Map(Object.entries(config.stripe.planTable).map(([priceId, setting]) => [priceId, planOf(setting)]));
}
