// Every credits and customers operation against every kind of caller.
import { errorCodes, startTestServer, uniqueEmail, type TestCustomer, type TestServer } from "../support/test-server";

let server: TestServer;
let owner: TestCustomer;
let stranger: TestCustomer;

beforeAll(async () => {
  server = await startTestServer();
  owner = await server.createCustomer({ initialSeconds: 100_000 });
  stranger = await server.createCustomer({ initialSeconds: 100_000 });
});
afterAll(() => server.close());

type Role = "anonymous" | "invalid" | "expired" | "owner" | "stranger" | "staff";
const roles: Role[] = ["anonymous", "invalid", "expired", "owner", "stranger", "staff"];

function tokenOf(role: Role): string | undefined {
  switch (role) {
    case "anonymous":
      return undefined;
    case "invalid":
      return "splice.v1.bm90.dmFsaWQ";
    case "expired":
      return require("../../src/platform/auth").mintSignedToken(server.config.auth.tokenSecret, "staff", "old", 1, Date.now() - 10_000);
    case "owner":
      return owner.token;
    case "stranger":
      return stranger.token;
    case "staff":
      return server.staffToken;
  }
}

async function ownersReservation(): Promise<string> {
  const result: any = await server.graphql(
    `mutation { reserveCredits(input: { estimatedSeconds: 10, endpoint: "auth" }) { reservation { id } } }`,
    {},
    owner.token,
  );
  return result.data.reserveCredits.reservation.id;
}

/** "ok" for success, "null" for a null answer, otherwise the error code. */
type Expected = Record<Role, string>;
const denied = { anonymous: "UNAUTHENTICATED", invalid: "UNAUTHENTICATED", expired: "UNAUTHENTICATED" };

const operations: [name: string, run: (token: string | undefined) => Promise<any>, expected: Expected][] = [
  [
    "me",
    (token) => server.graphql(`{ me { id } }`, {}, token),
    { ...denied, owner: "ok", stranger: "ok", staff: "null" },
  ],
  [
    "customer",
    (token) => server.graphql(`query($id: ID!) { customer(id: $id) { id } }`, { id: owner.id }, token),
    { ...denied, owner: "FORBIDDEN", stranger: "FORBIDDEN", staff: "ok" },
  ],
  [
    "searchCustomers",
    (token) => server.graphql(`{ searchCustomers(query: "example") { edges { cursor } } }`, {}, token),
    { ...denied, owner: "FORBIDDEN", stranger: "FORBIDDEN", staff: "ok" },
  ],
  [
    "reservation",
    async (token) => server.graphql(`query($id: ID!) { reservation(id: $id) { id } }`, { id: await ownersReservation() }, token),
    { ...denied, owner: "ok", stranger: "null", staff: "ok" },
  ],
  [
    "createCustomer",
    (token) => server.graphql(`mutation($e: String!) { createCustomer(input: { email: $e }) { id } }`, { e: uniqueEmail() }, token),
    { ...denied, owner: "FORBIDDEN", stranger: "FORBIDDEN", staff: "ok" },
  ],
  [
    "reserveCredits on the owner's account",
    (token) =>
      server.graphql(
        `mutation($id: ID) { reserveCredits(input: { customerId: $id, estimatedSeconds: 5, endpoint: "auth" }) { replayed } }`,
        { id: owner.id },
        token,
      ),
    { ...denied, owner: "ok", stranger: "FORBIDDEN", staff: "ok" },
  ],
  [
    "confirmReservation",
    async (token) =>
      server.graphql(
        `mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 5 }) { balance { secondsRemaining } } }`,
        { id: await ownersReservation() },
        token,
      ),
    { ...denied, owner: "ok", stranger: "RESERVATION_NOT_FOUND", staff: "ok" },
  ],
  [
    "releaseReservation",
    async (token) =>
      server.graphql(
        `mutation($id: ID!) { releaseReservation(input: { reservationId: $id }) { balance { secondsRemaining } } }`,
        { id: await ownersReservation() },
        token,
      ),
    { ...denied, owner: "ok", stranger: "RESERVATION_NOT_FOUND", staff: "ok" },
  ],
  [
    "adjustCredits",
    (token) =>
      server.graphql(
        `mutation($id: ID!) { adjustCredits(input: { customerId: $id, deltaSeconds: 1, note: "auth" }) { id } }`,
        { id: owner.id },
        token,
      ),
    { ...denied, owner: "FORBIDDEN", stranger: "FORBIDDEN", staff: "ok" },
  ],
];

const issue = (token: string | undefined) =>
  server.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { created } }`, { id: owner.id }, token);

async function ownersKey(): Promise<string> {
  const issued: any = await issue(server.staffToken);
  const license: any = await server.graphql(`query($id: ID!) { customer(id: $id) { license { key } } }`, { id: owner.id }, server.staffToken);
  return issued.data ? license.data.customer.license.key : "";
}

async function ownersDevice(): Promise<string> {
  const activated: any = await server.graphql(
    `mutation($key: String!, $fp: String!) { activateLicense(input: { key: $key, device: { fingerprint: $fp } }) { device { id } } }`,
    { key: await ownersKey(), fp: "authorization-matrix" },
  );
  return activated.data.activateLicense.device.id;
}

operations.push(
  ["issueLicense", issue, { ...denied, owner: "FORBIDDEN", stranger: "FORBIDDEN", staff: "ok" }],
  [
    "resendLicense for the owner",
    (token) => server.graphql(`mutation($id: ID) { resendLicense(input: { customerId: $id }) { key } }`, { id: owner.id }, token),
    { ...denied, owner: "ok", stranger: "FORBIDDEN", staff: "ok" },
  ],
  [
    "activateLicense (the key is the credential)",
    async (token) => server.graphql(`mutation($key: String!) { activateLicense(input: { key: $key }) { customerId } }`, { key: await ownersKey() }, token),
    { anonymous: "ok", invalid: "ok", expired: "ok", owner: "ok", stranger: "ok", staff: "ok" },
  ],
  [
    "deactivateLicense",
    async (token) => {
      const key = await ownersKey();
      const result = await server.graphql(`mutation($key: String!) { deactivateLicense(input: { key: $key, reason: "matrix" }) { status } }`, { key }, token);
      await server.graphql(`mutation($key: String!) { reactivateLicense(input: { key: $key }) { status } }`, { key }, server.staffToken);
      return result;
    },
    { ...denied, owner: "FORBIDDEN", stranger: "FORBIDDEN", staff: "ok" },
  ],
  [
    "reactivateLicense",
    async (token) => server.graphql(`mutation($key: String!) { reactivateLicense(input: { key: $key }) { status } }`, { key: await ownersKey() }, token),
    { ...denied, owner: "FORBIDDEN", stranger: "FORBIDDEN", staff: "ok" },
  ],
  [
    "deactivateDevice",
    async (token) => server.graphql(`mutation($id: ID!) { deactivateDevice(input: { deviceId: $id }) { id } }`, { id: await ownersDevice() }, token),
    { ...denied, owner: "ok", stranger: "FORBIDDEN", staff: "ok" },
  ],
);

const table = operations.flatMap(([name, run, expected]) => roles.map((role) => [name, role, run, expected[role]] as const));

it.each(table)("%s as %s", async (_name, role, run, expected) => {
  const response = await run(tokenOf(role));
  if (expected === "ok" || expected === "null") {
    expect(response.errors).toBeUndefined();
    const value = Object.values(response.data)[0];
    if (expected === "null") expect(value).toBeNull();
    else expect(value).not.toBeNull();
  } else {
    expect(errorCodes(response)).toEqual([expected]);
  }
});

it("refuses a token signed with another secret", async () => {
  const forged = require("../../src/platform/auth").mintSignedToken("another-secret-of-enough-length-123", "staff", "mallory", 60);
  expect(errorCodes(await server.graphql(`{ searchCustomers(query: "a") { edges { cursor } } }`, {}, forged))).toEqual(["UNAUTHENTICATED"]);
});
