// Every query and mutation of the served schema against every kind of caller, over HTTP. The
// expected answers come from the modules' permission tables, the same ones the services read;
// only what happens after authorization (a price refused, nothing to replay) is written here.
// A field of Query or Mutation missing from the tables or from this file fails the test.
import { billingPermissions } from "../../src/modules/billing";
import { creditsPermissions } from "../../src/modules/credits";
import { customersPermissions } from "../../src/modules/customers";
import { licensesPermissions } from "../../src/modules/licenses";
import { mintToken } from "../../src/platform/auth";
import type { Permission } from "../../src/platform/authorization";
import { buildSchema } from "../../src/schema";
import { errorCodes, startTestServer, uniqueEmail, type GraphQLResponse, type TestCustomer, type TestServer } from "../support/test-server";

type Role = "anonymous" | "invalid" | "expired" | "owner" | "stranger" | "device" | "revokedDevice" | "staff";
const roles: Role[] = ["anonymous", "invalid", "expired", "owner", "stranger", "device", "revokedDevice", "staff"];
/** "ok" for success, "null" for a null answer, otherwise the error code. */
type Outcome = string;

const permissions: Record<string, Permission> = { ...customersPermissions, ...creditsPermissions, ...licensesPermissions, ...billingPermissions };
const unauthenticatedRoles: Role[] = ["anonymous", "invalid", "expired", "revokedDevice"];

/** What the permission alone decides for each kind of caller: the rule the services apply. */
function permitted(permission: Permission, role: Role): Outcome {
  if (permission.access === "anyone") return "ok";
  if (unauthenticatedRoles.includes(role)) return "UNAUTHENTICATED";
  switch (permission.access) {
    case "signed-in":
      return "ok";
    case "staff":
      return role === "staff" ? "ok" : "FORBIDDEN";
    case "customer":
      return role === "owner" || role === "stranger" ? "ok" : "FORBIDDEN";
    case "device":
      return role === "device" ? "ok" : "FORBIDDEN";
    case "owner-or-staff":
      return role === "stranger" ? permission.others : "ok";
  }
}

let server: TestServer;
let owner: TestCustomer;
let stranger: TestCustomer;
let ownerKey: string;
let revokedDeviceToken: string;

beforeAll(async () => {
  // The matrix activates the same devices again and again: limits that guard real plugins are
  // raised here so that every role meets the permission, not a rate limit.
  server = await startTestServer({ environment: { CERTIFICATE_CHECKOUTS_PER_DEVICE_PER_HOUR: "1000", LICENSE_OFFLINE_DEVICES_PER_SEAT: "10" } });
  owner = await server.createCustomer({ initialSeconds: 100_000, tier: "STUDIO" });
  stranger = await server.createCustomer({ initialSeconds: 100_000 });
  const issued: any = await server.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`, { id: owner.id }, server.staffToken);
  ownerKey = issued.data.issueLicense.license.key;
  const revoked = await activateDevice("revoked-device");
  revokedDeviceToken = revoked.token;
  await server.graphql(`mutation($id: ID!) { deactivateDevice(input: { deviceId: $id }) { id } }`, { id: revoked.id }, server.staffToken);
});
afterAll(() => server.close());

async function activateDevice(fingerprint: string): Promise<{ id: string; token: string }> {
  const activated: any = await server.graphql(
    `mutation($key: String!, $fp: String!) { activateLicense(input: { key: $key, device: { fingerprint: $fp } }) { device { id } deviceToken } }`,
    { key: ownerKey, fp: fingerprint },
  );
  return { id: activated.data.activateLicense.device.id, token: activated.data.activateLicense.deviceToken };
}

async function tokenOf(role: Role): Promise<string | undefined> {
  switch (role) {
    case "anonymous":
      return undefined;
    case "invalid":
      return "eyJhbGciOiJIUzI1NiJ9.bm90.dmFsaWQ";
    case "expired":
      return mintToken(server.config.auth, "staff", "old", 1, Date.now() - 120_000);
    case "owner":
      return owner.token;
    case "stranger":
      return stranger.token;
    // Activating again hands out a fresh token, whatever earlier rows revoked.
    case "device":
      return (await activateDevice("matrix-device")).token;
    case "revokedDevice":
      return revokedDeviceToken;
    case "staff":
      return server.staffToken;
  }
}

async function ownersReservation(): Promise<string> {
  const result: any = await server.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 10, endpoint: "auth" }) { reservation { id } } }`, {}, owner.token);
  return result.data.reserveCredits.reservation.id;
}

/** Each operation runs on the owner's objects; `allowed` overrides what a permitted caller gets. */
const operations: { field: string; run: (token: string | undefined) => Promise<GraphQLResponse>; allowed?: Partial<Record<Role, Outcome>> }[] = [
  { field: "Query.me", run: (token) => server.graphql(`{ me { id } }`, {}, token), allowed: { staff: "null" } },
  { field: "Query.customer", run: (token) => server.graphql(`query($id: ID!) { customer(id: $id) { id } }`, { id: owner.id }, token) },
  { field: "Query.searchCustomers", run: (token) => server.graphql(`{ searchCustomers(query: "example") { edges { cursor } } }`, {}, token) },
  {
    field: "Query.reservation",
    run: async (token) => server.graphql(`query($id: ID!) { reservation(id: $id) { id } }`, { id: await ownersReservation() }, token),
  },
  { field: "Query.stripeEvents", run: (token) => server.graphql(`{ stripeEvents { id } }`, {}, token) },
  {
    field: "Mutation.createCustomer",
    run: (token) => server.graphql(`mutation($e: String!) { createCustomer(input: { email: $e }) { id } }`, { e: uniqueEmail() }, token),
  },
  {
    field: "Mutation.reserveCredits",
    run: (token) => server.graphql(`mutation($id: ID) { reserveCredits(input: { customerId: $id, estimatedSeconds: 5, endpoint: "auth" }) { replayed } }`, { id: owner.id }, token),
  },
  {
    field: "Mutation.confirmReservation",
    run: async (token) =>
      server.graphql(`mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 5 }) { balance { secondsRemaining } } }`, { id: await ownersReservation() }, token),
  },
  {
    field: "Mutation.releaseReservation",
    run: async (token) => server.graphql(`mutation($id: ID!) { releaseReservation(input: { reservationId: $id }) { balance { secondsRemaining } } }`, { id: await ownersReservation() }, token),
  },
  {
    field: "Mutation.adjustCredits",
    run: (token) => server.graphql(`mutation($id: ID!) { adjustCredits(input: { customerId: $id, deltaSeconds: 1, note: "auth" }) { id } }`, { id: owner.id }, token),
  },
  {
    field: "Mutation.issueLicense",
    run: (token) => server.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { created } }`, { id: owner.id }, token),
  },
  {
    field: "Mutation.resendLicense",
    run: (token) => server.graphql(`mutation($id: ID) { resendLicense(input: { customerId: $id }) { key } }`, { id: owner.id }, token),
  },
  {
    field: "Mutation.activateLicense",
    run: (token) => server.graphql(`mutation($key: String!) { activateLicense(input: { key: $key }) { customerId } }`, { key: ownerKey }, token),
  },
  {
    field: "Mutation.deactivateLicense",
    run: async (token) => {
      const result = await server.graphql(`mutation($key: String!) { deactivateLicense(input: { key: $key, reason: "matrix" }) { status } }`, { key: ownerKey }, token);
      await server.graphql(`mutation($key: String!) { reactivateLicense(input: { key: $key }) { status } }`, { key: ownerKey }, server.staffToken);
      return result;
    },
  },
  {
    field: "Mutation.reactivateLicense",
    run: (token) => server.graphql(`mutation($key: String!) { reactivateLicense(input: { key: $key }) { status } }`, { key: ownerKey }, token),
  },
  {
    field: "Mutation.setLowBalanceAlert",
    run: (token) =>
      server.graphql(`mutation($id: ID) { setLowBalanceAlert(input: { customerId: $id, thresholdSeconds: 10 }) { id } }`, { id: owner.id }, token),
  },
  {
    field: "Mutation.checkOutLicenseCertificate",
    run: (token) => server.graphql(`mutation { checkOutLicenseCertificate { keyId } }`, {}, token),
  },
  { field: "Query.licenseSigningKeys", run: (token) => server.graphql(`{ licenseSigningKeys { keyId } }`, {}, token) },
  {
    field: "Mutation.deactivateDevice",
    run: async (token) => server.graphql(`mutation($id: ID!) { deactivateDevice(input: { deviceId: $id }) { id } }`, { id: (await activateDevice("to-deactivate")).id }, token),
  },
  {
    // Past authorization the price is refused: only the customer's own dashboard may buy.
    field: "Mutation.startCheckout",
    run: (token) =>
      server.graphql(`mutation { startCheckout(input: { priceId: "price_none", successUrl: "http://localhost:3000/a", cancelUrl: "http://localhost:3000/b" }) { url } }`, {}, token),
    allowed: { owner: "BAD_USER_INPUT", stranger: "BAD_USER_INPUT" },
  },
  {
    field: "Mutation.openBillingPortal",
    run: (token) => server.graphql(`mutation { openBillingPortal(input: { returnUrl: "https://elsewhere.test/" }) { url } }`, {}, token),
    allowed: { owner: "BAD_USER_INPUT", stranger: "BAD_USER_INPUT" },
  },
  {
    field: "Mutation.replayStripeEvent",
    run: (token) => server.graphql(`mutation { replayStripeEvent(id: "evt_unknown") { id } }`, {}, token),
    allowed: { staff: "STRIPE_EVENT_NOT_FOUND" },
  },
];

// The tables as reviewed: the matrix below derives its expectations from them, so a changed
// permission must show up here, as a change to this list, to pass.
it("holds the permissions as reviewed", () => {
  expect(Object.fromEntries(Object.entries(permissions).map(([operation, permission]) => [operation, Object.values(permission).join(" ")]))).toEqual({
    "Query.me": "signed-in",
    "Query.customer": "staff",
    "Query.searchCustomers": "staff",
    "Mutation.createCustomer": "staff",
    "Query.reservation": "owner-or-staff null",
    "Mutation.reserveCredits": "owner-or-staff FORBIDDEN",
    "Mutation.confirmReservation": "owner-or-staff RESERVATION_NOT_FOUND",
    "Mutation.releaseReservation": "owner-or-staff RESERVATION_NOT_FOUND",
    "Mutation.adjustCredits": "staff",
    "Mutation.setLowBalanceAlert": "owner-or-staff FORBIDDEN",
    "Mutation.issueLicense": "staff",
    "Mutation.resendLicense": "owner-or-staff FORBIDDEN",
    "Mutation.activateLicense": "anyone",
    "Mutation.deactivateLicense": "staff",
    "Mutation.reactivateLicense": "staff",
    "Mutation.deactivateDevice": "owner-or-staff DEVICE_NOT_FOUND",
    "Mutation.checkOutLicenseCertificate": "device",
    "Query.licenseSigningKeys": "anyone",
    "License.auditTrail": "staff",
    "Query.stripeEvents": "staff",
    "Mutation.startCheckout": "customer",
    "Mutation.openBillingPortal": "customer",
    "Mutation.replayStripeEvent": "staff",
  });
});

it("lists every query and mutation of the served schema, here and in the permission tables", () => {
  const schema = buildSchema();
  const served = [
    ...Object.keys(schema.getQueryType()!.getFields()).map((field) => `Query.${field}`),
    ...Object.keys(schema.getMutationType()!.getFields()).map((field) => `Mutation.${field}`),
  ].sort();
  expect(operations.map((operation) => operation.field).sort()).toEqual(served);
  const rootPermissions = Object.keys(permissions).filter((operation) => /^(Query|Mutation)\./.test(operation));
  expect(rootPermissions.sort()).toEqual(served);
});

const table = operations.flatMap(({ field, run, allowed }) =>
  roles.map((role) => {
    const decided = permitted(permissions[field]!, role);
    return [field, role, run, decided === "ok" ? allowed?.[role] ?? "ok" : decided] as const;
  }),
);

it.each(table)("%s as %s", async (_field, role, run, expected) => {
  const response = await run(await tokenOf(role));
  if (expected === "ok" || expected === "null") {
    expect(response.errors).toBeUndefined();
    const value = Object.values(response.data as object)[0];
    if (expected === "null") expect(value).toBeNull();
    else expect(value).not.toBeNull();
  } else {
    expect(errorCodes(response)).toEqual([expected]);
  }
});

it("refuses a token signed with another secret", async () => {
  const forged = mintToken({ ...server.config.auth, jwtSecret: "another-secret-of-enough-length-123" }, "staff", "mallory", 60);
  expect(errorCodes(await server.graphql(`{ searchCustomers(query: "a") { edges { cursor } } }`, {}, forged))).toEqual(["UNAUTHENTICATED"]);
});
