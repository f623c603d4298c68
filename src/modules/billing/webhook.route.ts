// POST /webhooks/stripe: outside GraphQL, reading the raw body (Stripe signs the exact bytes),
// so it is mounted before any JSON parser. Stripe retries every answer that is not 2xx, for up
// to three days:
//   400  not signed by Stripe (or stale): nothing recorded;
//   200  recorded and PROCESSED or IGNORED, or recorded FAILED as unreadable (a retry of the
//        same bytes cannot help; staff see it in stripeEvents and replay it after an upgrade);
//   422  recorded FAILED with its reason (an unknown price, a payment not seen yet): Stripe's
//        retries apply it once the cause is gone;
//   503  the database cannot answer (with Retry-After, from the app's error handler).
import express, { Router, type Request, type Response } from "express";
import { withDeadline } from "../../platform/deadline";
import type { Receipt, WebhooksService } from "./webhooks.service";

export interface WebhookRouteLimits {
  maxBytes: number;
  /** How long a delivery may wait on the database before it is answered 503. */
  deadlineMs: number;
}

const statusOf = (receipt: Receipt) => (receipt.status === "FAILED" && receipt.retryCanHelp ? 422 : 200);

export function stripeWebhookRouter(webhooks: WebhooksService, limits: WebhookRouteLimits): Router {
  const router = Router();
  router.post("/webhooks/stripe", express.raw({ type: () => true, limit: limits.maxBytes }), async (request: Request, response: Response) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const verified = webhooks.verify(body, request.header("stripe-signature"));
    if (!verified) {
      response.status(400).json({ error: "invalid Stripe signature" });
      return;
    }
    const receipt = await withDeadline(limits.deadlineMs, () => webhooks.receive(verified.payload, body));
    response.status(statusOf(receipt)).json({ received: true, status: receipt.status });
  });
  return router;
}
