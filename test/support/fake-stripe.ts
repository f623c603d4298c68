// A local fake of the parts of Stripe's HTTP API this service calls, so the real Stripe SDK
// can be pointed at it. It records requests and can fail on demand.
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";

export interface RecordedRequest {
  method: string;
  path: string;
  body: URLSearchParams;
}

export interface FakeStripe {
  port: number;
  requests: RecordedRequest[];
  /** Price ids of each checkout session's line items. */
  lineItems: Map<string, string>;
  /** Payment intents of each invoice. */
  invoicePayments: Map<string, string[]>;
  /** Stripe customers' metadata as last written. */
  customerMetadata: Map<string, Record<string, string>>;
  /** Answer this many of the next requests with a 500. */
  failNext(count: number): void;
  /** Answer the next request with this status and Stripe error (a refusal: 400, 401, 403). */
  refuseNext(status: number, type: string, message: string): void;
  close(): Promise<void>;
}

export async function startFakeStripe(): Promise<FakeStripe> {
  const requests: RecordedRequest[] = [];
  const lineItems = new Map<string, string>();
  const invoicePayments = new Map<string, string[]>();
  const customerMetadata = new Map<string, Record<string, string>>();
  const customersByIdempotencyKey = new Map<string, string>();
  let failuresLeft = 0;
  let refusal: { status: number; type: string; message: string } | undefined;

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const url = new URL(request.url ?? "/", "http://fake");
      const body = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      requests.push({ method: request.method ?? "", path: url.pathname, body });
      const send = (status: number, payload: unknown) => {
        response.writeHead(status, { "content-type": "application/json", "request-id": `req_${crypto.randomBytes(6).toString("hex")}` });
        response.end(JSON.stringify(payload));
      };
      if (refusal) {
        const { status, type, message } = refusal;
        refusal = undefined;
        send(status, { error: { type, message } });
        return;
      }
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        send(500, { error: { type: "api_error", message: "fake Stripe failure" } });
        return;
      }
      const parts = url.pathname.split("/").filter(Boolean);
      if (request.method === "GET" && parts[1] === "checkout" && parts[4] === "line_items") {
        const price = lineItems.get(parts[3]!);
        send(200, { object: "list", url: url.pathname, has_more: false, data: price ? [{ id: "li_1", object: "item", quantity: 1, price: { id: price, object: "price" } }] : [] });
      } else if (request.method === "GET" && parts[1] === "invoice_payments") {
        const invoice = url.searchParams.get("invoice") ?? "";
        const data = (invoicePayments.get(invoice) ?? []).map((paymentIntent, index) => ({
          id: `inpay_${index}`,
          object: "invoice_payment",
          invoice,
          payment: { type: "payment_intent", payment_intent: paymentIntent },
          status: "paid",
        }));
        send(200, { object: "list", url: url.pathname, has_more: false, data });
      } else if (request.method === "POST" && url.pathname === "/v1/customers") {
        const key = String(request.headers["idempotency-key"] ?? crypto.randomUUID());
        const id = customersByIdempotencyKey.get(key) ?? `cus_${crypto.randomBytes(7).toString("hex")}`;
        customersByIdempotencyKey.set(key, id);
        send(200, { id, object: "customer", email: body.get("email") });
      } else if (request.method === "POST" && parts[1] === "customers" && parts[2]) {
        const metadata: Record<string, string> = {};
        for (const [name, value] of body) {
          const match = /^metadata\[(.+)\]$/.exec(name);
          if (match) metadata[match[1]!] = value;
        }
        customerMetadata.set(parts[2], metadata);
        send(200, { id: parts[2], object: "customer", metadata });
      } else if (request.method === "POST" && url.pathname === "/v1/checkout/sessions") {
        const id = `cs_test_${crypto.randomBytes(8).toString("hex")}`;
        send(200, { id, object: "checkout.session", url: `https://checkout.stripe.test/pay/${id}`, customer: body.get("customer"), mode: body.get("mode") });
      } else if (request.method === "POST" && url.pathname === "/v1/billing_portal/sessions") {
        send(200, { id: "bps_1", object: "billing_portal.session", url: `https://billing.stripe.test/session/${body.get("customer")}` });
      } else {
        send(404, { error: { type: "invalid_request_error", message: `fake Stripe has no ${request.method} ${url.pathname}` } });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    lineItems,
    invoicePayments,
    customerMetadata,
    failNext: (count) => {
      failuresLeft = count;
    },
    refuseNext: (status, type, message) => {
      refusal = { status, type, message };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A webhook delivery as Stripe sends it: the JSON body and its Stripe-Signature header. */
export function signedDelivery(event: object, secret: string, timestampSeconds?: number): { body: string; signature: string } {
  const body = JSON.stringify(event);
  const signature = Stripe.webhooks.generateTestHeaderString({ payload: body, secret, ...(timestampSeconds ? { timestamp: timestampSeconds } : {}) });
  return { body, signature };
}

let sequence = 0;
export const stripeId = (prefix: string) => `${prefix}_${Date.now().toString(36)}${(sequence++).toString(36)}${crypto.randomBytes(3).toString("hex")}`;

/** An event envelope shaped like Stripe's for the SDK's pinned API version. */
export function stripeEvent(type: string, object: Record<string, unknown>, createdSeconds = Math.floor(Date.now() / 1000)) {
  return {
    id: stripeId("evt"),
    object: "event",
    api_version: Stripe.API_VERSION,
    created: createdSeconds,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object },
  };
}
