// POST /webhooks/stripe: outside GraphQL, reading the raw body (Stripe signs the exact bytes),
// so it is mounted before any JSON parser. 400 for anything not signed by Stripe; 200 once the
// event is recorded and processed or ignored; 500 when processing failed, so Stripe retries.
import express, { Router, type Request, type Response } from "express";
import type { WebhooksService } from "./webhooks.service";

export function stripeWebhookRouter(webhooks: WebhooksService, maxBytes: number): Router {
  const router = Router();
  router.post("/webhooks/stripe", express.raw({ type: () => true, limit: maxBytes }), async (request: Request, response: Response) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const event = webhooks.verify(body, request.header("stripe-signature"));
    if (!event) {
      response.status(400).json({ error: "invalid Stripe signature" });
      return;
    }
    const result = await webhooks.receive(event);
    response.status(result === "FAILED" ? 500 : 200).json({ received: true, status: result });
  });
  return router;
}
