// The Stripe SDK, pointed at api.stripe.com or, for tests and local runs, at any host.
// Its own retries are off: calls that must succeed go through the outbox, which retries.
import Stripe from "stripe";
import type { Config } from "../../config";

export type StripeClient = Stripe;

export function createStripeClient(config: Config["stripe"]): StripeClient {
  return new Stripe(config.secretKey, {
    maxNetworkRetries: 0,
    timeout: config.timeoutMs,
    ...(config.api.host ? { host: config.api.host } : {}),
    ...(config.api.port ? { port: config.api.port } : {}),
    ...(config.api.protocol ? { protocol: config.api.protocol } : {}),
  });
}
