import { generateLicenseKey } from "../../src/modules/licenses/license-key";
import { errorCodes, startTestServer, type GraphQLResponse, type TestCustomer, type TestServer } from "../support/test-server";

const issueMutation = `mutation Issue($id: ID!) { issueLicense(input: { customerId: $id }) { created license { id key status maxDevices customerId } } }`;
const activateMutation = `mutation Activate($input: ActivateLicenseInput!) {
  activateLicense(input: $input) {
    customerId alreadyActivated activatedAt deviceToken
    device { id fingerprint name activatedAt lastSeenAt }
    license { id status activatedAt maxDevices devices { id fingerprint } }
  } }`;
const deactivateLicense = `mutation D($key: String!, $reason: String!) { deactivateLicense(input: { key: $key, reason: $reason }) { status deactivatedAt deactivationReason devices { id } } }`;
const reactivateLicense = `mutation R($key: String!) { reactivateLicense(input: { key: $key }) { status deactivatedAt deactivationReason } }`;
const deactivateDevice = `mutation DD($id: ID!) { deactivateDevice(input: { deviceId: $id }) { devices { id } } }`;
const meQuery = `{ me { id balance { secondsRemaining } } }`;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ environment: { TRUST_PROXY: "loopback" } });
});
afterAll(() => server.close());

async function customerWithLicense(options: { tier?: "STARTER" | "PRO" | "STUDIO" } = {}): Promise<TestCustomer & { key: string }> {
  const customer = await server.createCustomer({ initialSeconds: 3600, tier: options.tier });
  const issued: any = await server.graphql(issueMutation, { id: customer.id }, server.staffToken);
  return { ...customer, key: issued.data.issueLicense.license.key };
}

/** Each call from its own client address, as the plugin on many machines would be. */
let addressCounter = 0;
function activate(input: Record<string, unknown>, address = `10.0.${Math.floor(addressCounter / 250)}.${(addressCounter++ % 250) + 1}`) {
  return server.graphql(activateMutation, { input }, undefined, { "x-forwarded-for": address });
}

const ok = (responses: GraphQLResponse[]) => responses.filter((response) => !response.errors);

describe("issueLicense", () => {
  it("creates one license per customer and returns it again afterwards", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0, tier: "PRO" });
    const first: any = await server.graphql(issueMutation, { id: customer.id }, server.staffToken);
    expect(first.data.issueLicense).toMatchObject({ created: true, license: { status: "ACTIVE", maxDevices: 3, customerId: customer.id } });
    expect(first.data.issueLicense.license.key).toMatch(/^SPLICE-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    const again: any = await server.graphql(issueMutation, { id: customer.id }, server.staffToken);
    expect(again.data.issueLicense).toEqual({ ...first.data.issueLicense, created: false });
  });

  it("creates exactly one license when issued concurrently", async () => {
    const customer = await server.createCustomer({ initialSeconds: 0 });
    const responses: any[] = await Promise.all(
      Array.from({ length: 10 }, () => server.graphql(issueMutation, { id: customer.id }, server.staffToken)),
    );
    expect(ok(responses)).toHaveLength(10);
    expect(new Set(responses.map((response) => response.data.issueLicense.license.key)).size).toBe(1);
    expect(responses.filter((response) => response.data.issueLicense.created)).toHaveLength(1);
    const stored = await server.sql.query("SELECT count(*)::int AS n FROM license WHERE customer_id = $1", [customer.id]);
    expect(stored.rows[0].n).toBe(1);
    const queued = await server.sql.query("SELECT count(*)::int AS n FROM outbox_job WHERE customer_id = $1", [customer.id]);
    expect(queued.rows[0].n).toBe(1);
  });

  it("answers CUSTOMER_NOT_FOUND for an unknown customer", async () => {
    const result = await server.graphql(issueMutation, { id: "00000000-0000-4000-8000-000000000000" }, server.staffToken);
    expect(errorCodes(result)).toEqual(["CUSTOMER_NOT_FOUND"]);
  });

  it("shows the license to its owner and lets staff find the owner by key", async () => {
    const customer = await customerWithLicense();
    const own: any = await server.graphql(`{ me { license { key status } } }`, {}, customer.token);
    expect(own.data.me.license).toEqual({ key: customer.key, status: "ACTIVE" });
    const search: any = await server.graphql(`query($q: String!) { searchCustomers(query: $q) { edges { node { id } } } }`, { q: ` ${customer.key.toLowerCase()} ` }, server.staffToken);
    expect(search.data.searchCustomers.edges.map((edge: any) => edge.node.id)).toEqual([customer.id]);
  });
});

describe("activateLicense", () => {
  it("refuses malformed, unknown and deactivated keys with the contract's codes and messages", async () => {
    const malformed = await activate({ key: "SPLICE-1234" });
    expect(errorCodes(malformed)).toEqual(["INVALID_LICENSE_KEY"]);
    const unknown = await activate({ key: generateLicenseKey() });
    expect(unknown.errors![0]).toMatchObject({ message: "License key not found", extensions: { code: "LICENSE_NOT_FOUND" } });
    const customer = await customerWithLicense();
    await server.graphql(deactivateLicense, { key: customer.key, reason: "fraud check" }, server.staffToken);
    const deactivated = await activate({ key: customer.key });
    expect(deactivated.errors![0]).toMatchObject({ message: "License key deactivated", extensions: { code: "LICENSE_DEACTIVATED" } });
  });

  it("sets activatedAt once, on the first successful activation; later calls return the same", async () => {
    const customer = await customerWithLicense();
    const first: any = await activate({ key: `  ${customer.key.toLowerCase()}  ` });
    expect(first.data.activateLicense).toMatchObject({ customerId: customer.id, alreadyActivated: false, device: null, deviceToken: null });
    const second: any = await activate({ key: customer.key });
    expect(second.data.activateLicense).toMatchObject({ alreadyActivated: true, activatedAt: first.data.activateLicense.activatedAt });
  });

  it("many simultaneous activations of one key: exactly one first activation, one activatedAt, all return the owner", async () => {
    const customer = await customerWithLicense({ tier: "STUDIO" });
    const responses: any[] = await Promise.all(
      Array.from({ length: 30 }, (_, index) => activate(index % 3 === 0 ? { key: customer.key, device: { fingerprint: `fp-${index % 2}` } } : { key: customer.key })),
    );
    expect(ok(responses)).toHaveLength(30);
    expect(responses.filter((response) => response.data.activateLicense.alreadyActivated === false)).toHaveLength(1);
    expect(new Set(responses.map((response) => response.data.activateLicense.activatedAt)).size).toBe(1);
    expect(new Set(responses.map((response) => response.data.activateLicense.customerId))).toEqual(new Set([customer.id]));
    const stored = await server.sql.query("SELECT activated_at FROM license WHERE key = $1", [customer.key]);
    expect(stored.rows[0].activated_at.toISOString()).toBe(responses[0].data.activateLicense.activatedAt);
    const firsts = await server.sql.query("SELECT count(*)::int AS n FROM license_event e JOIN license l ON l.id = e.license_id WHERE l.key = $1 AND e.kind = 'ACTIVATED'", [customer.key]);
    expect(firsts.rows[0].n).toBe(1);
  });

  it("more devices than seats racing: exactly maxDevices win", async () => {
    const customer = await customerWithLicense({ tier: "STARTER" });
    const responses: any[] = await Promise.all(
      Array.from({ length: 12 }, (_, index) => activate({ key: customer.key, device: { fingerprint: `machine-${index}`, name: `Studio ${index}` } })),
    );
    expect(ok(responses)).toHaveLength(2);
    expect(responses.flatMap((response) => errorCodes(response))).toEqual(Array(10).fill("DEVICE_LIMIT_REACHED"));
    const seated = await server.sql.query(
      "SELECT count(*)::int AS n FROM device d JOIN license l ON l.id = d.license_id WHERE l.key = $1 AND d.deactivated_at IS NULL",
      [customer.key],
    );
    expect(seated.rows[0].n).toBe(2);
  });

  it("40 devices activating 40 different licenses at once all get their seat and certificate: no license's activation aborts another's", async () => {
    const customers = await Promise.all(Array.from({ length: 40 }, () => customerWithLicense({ tier: "PRO" })));
    const responses: any[] = await Promise.all(customers.map((customer, index) => activate({ key: customer.key, device: { fingerprint: `studio-${index}` } })));
    expect(responses.map((response) => errorCodes(response))).toEqual(Array(40).fill([]));
    const certified = await server.sql.query(
      "SELECT count(*)::int AS n FROM device d JOIN license l ON l.id = d.license_id WHERE l.key = ANY($1) AND d.certificate_expires_at IS NOT NULL",
      [customers.map((customer) => customer.key)],
    );
    expect(certified.rows[0].n).toBe(40);
  });

  it("the same device again takes no new seat, refreshes lastSeenAt and rotates its token", async () => {
    const customer = await customerWithLicense();
    const first: any = await activate({ key: customer.key, device: { fingerprint: "laptop-1", name: "Laptop" } });
    const firstToken = first.data.activateLicense.deviceToken;
    expect(firstToken).toMatch(/^spd_/);
    expect((await server.graphql(meQuery, {}, firstToken)).data).toEqual({ me: { id: customer.id, balance: { secondsRemaining: 3600 } } });
    server.clock.advanceSeconds(60);
    const again: any = await activate({ key: customer.key, device: { fingerprint: "laptop-1" } });
    expect(again.data.activateLicense.device.id).toBe(first.data.activateLicense.device.id);
    expect(again.data.activateLicense.device.name).toBe("Laptop");
    expect(Date.parse(again.data.activateLicense.device.lastSeenAt)).toBeGreaterThan(Date.parse(first.data.activateLicense.device.lastSeenAt));
    expect(again.data.activateLicense.license.devices).toHaveLength(1);
    expect(errorCodes(await server.graphql(meQuery, {}, firstToken))).toEqual(["UNAUTHENTICATED"]);
    expect(((await server.graphql(meQuery, {}, again.data.activateLicense.deviceToken)) as any).data.me.id).toBe(customer.id);
  });
});

describe("device tokens", () => {
  it("reserve and confirm credits on the owner's account only", async () => {
    const customer = await customerWithLicense();
    const other = await server.createCustomer({ initialSeconds: 100 });
    const token = ((await activate({ key: customer.key, device: { fingerprint: "desk" } })) as any).data.activateLicense.deviceToken;
    const reserved: any = await server.graphql(`mutation { reserveCredits(input: { estimatedSeconds: 600, endpoint: "render" }) { reservation { id } balance { secondsRemaining } } }`, {}, token);
    expect(reserved.data.reserveCredits.balance.secondsRemaining).toBe(3000);
    const confirmed: any = await server.graphql(
      `mutation($id: ID!) { confirmReservation(input: { reservationId: $id, actualSeconds: 500 }) { balance { secondsRemaining } } }`,
      { id: reserved.data.reserveCredits.reservation.id },
      token,
    );
    expect(confirmed.data.confirmReservation.balance.secondsRemaining).toBe(3100);
    const ledger = await server.sql.query("SELECT actor FROM ledger_entry WHERE customer_id = $1 AND kind = 'RESERVE'", [customer.id]);
    expect(ledger.rows[0].actor).toMatch(/^device:[0-9a-f-]{36}$/);
    const elsewhere = await server.graphql(`mutation($id: ID) { reserveCredits(input: { customerId: $id, estimatedSeconds: 1, endpoint: "x" }) { replayed } }`, { id: other.id }, token);
    expect(errorCodes(elsewhere)).toEqual(["FORBIDDEN"]);
    const staffOnly = await server.graphql(`mutation($id: ID!) { issueLicense(input: { customerId: $id }) { created } }`, { id: customer.id }, token);
    expect(errorCodes(staffOnly)).toEqual(["FORBIDDEN"]);
  });

  it("deactivating the device frees its seat and revokes its token on the next request", async () => {
    const customer = await customerWithLicense();
    const one: any = await activate({ key: customer.key, device: { fingerprint: "one" } });
    await activate({ key: customer.key, device: { fingerprint: "two" } });
    expect(errorCodes(await activate({ key: customer.key, device: { fingerprint: "three" } }))).toEqual(["DEVICE_LIMIT_REACHED"]);
    const stranger = await server.createCustomer({ initialSeconds: 0 });
    expect(errorCodes(await server.graphql(deactivateDevice, { id: one.data.activateLicense.device.id }, stranger.token))).toEqual(["DEVICE_NOT_FOUND"]);
    const freed: any = await server.graphql(deactivateDevice, { id: one.data.activateLicense.device.id }, customer.token);
    expect(freed.data.deactivateDevice.devices).toHaveLength(1);
    expect(errorCodes(await server.graphql(meQuery, {}, one.data.activateLicense.deviceToken))).toEqual(["UNAUTHENTICATED"]);
    const three: any = await activate({ key: customer.key, device: { fingerprint: "three" } });
    expect(three.data.activateLicense.device.fingerprint).toBe("three");
  });

  it("deactivating the license revokes every token at once; reactivation does not bring them back", async () => {
    const customer = await customerWithLicense();
    const device: any = await activate({ key: customer.key, device: { fingerprint: "studio-pc" } });
    const token = device.data.activateLicense.deviceToken;
    const deactivated: any = await server.graphql(deactivateLicense, { key: customer.key, reason: "chargeback" }, server.staffToken);
    expect(deactivated.data.deactivateLicense).toMatchObject({ status: "DEACTIVATED", deactivationReason: "chargeback" });
    expect(errorCodes(await server.graphql(meQuery, {}, token))).toEqual(["UNAUTHENTICATED"]);
    const reactivated: any = await server.graphql(reactivateLicense, { key: customer.key }, server.staffToken);
    expect(reactivated.data.reactivateLicense).toEqual({ status: "ACTIVE", deactivatedAt: null, deactivationReason: null });
    expect(errorCodes(await server.graphql(meQuery, {}, token))).toEqual(["UNAUTHENTICATED"]);
    const again: any = await activate({ key: customer.key, device: { fingerprint: "studio-pc" } });
    expect(((await server.graphql(meQuery, {}, again.data.activateLicense.deviceToken)) as any).data.me.id).toBe(customer.id);
  });

  it("records who did what and why, readable by staff only", async () => {
    const customer = await customerWithLicense();
    const device: any = await activate({ key: customer.key, device: { fingerprint: "audit" } });
    await server.graphql(deactivateLicense, { key: customer.key, reason: "support request #42" }, server.staffToken);
    await server.graphql(reactivateLicense, { key: customer.key }, server.staffToken);
    const query = `query($id: ID!) { customer(id: $id) { license { auditTrail { edges { node { kind actor reason deviceId } } } } } }`;
    const trail: any = await server.graphql(query, { id: customer.id }, server.staffToken);
    expect(trail.data.customer.license.auditTrail.edges.map((edge: any) => edge.node)).toEqual([
      { kind: "REACTIVATED", actor: "staff:test-staff", reason: null, deviceId: null },
      { kind: "DEACTIVATED", actor: "staff:test-staff", reason: "support request #42", deviceId: null },
      { kind: "ACTIVATED", actor: `device:${device.data.activateLicense.device.id}`, reason: null, deviceId: device.data.activateLicense.device.id },
      { kind: "DEVICE_ACTIVATED", actor: `device:${device.data.activateLicense.device.id}`, reason: null, deviceId: device.data.activateLicense.device.id },
      { kind: "DELIVERY_QUEUED", actor: "staff:test-staff", reason: null, deviceId: null },
      { kind: "ISSUED", actor: "staff:test-staff", reason: null, deviceId: null },
    ]);
    const own = await server.graphql(`{ me { license { auditTrail { edges { cursor } } } } }`, {}, customer.token);
    expect(errorCodes(own)).toEqual(["FORBIDDEN"]);
  });
});

describe("staff actions and input", () => {
  it("are staff only, and validate keys and reasons", async () => {
    const customer = await customerWithLicense();
    expect(errorCodes(await server.graphql(deactivateLicense, { key: customer.key, reason: "x" }, customer.token))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.graphql(reactivateLicense, { key: customer.key }))).toEqual(["UNAUTHENTICATED"]);
    expect(errorCodes(await server.graphql(deactivateLicense, { key: "nope", reason: "x" }, server.staffToken))).toEqual(["INVALID_LICENSE_KEY"]);
    expect(errorCodes(await server.graphql(deactivateLicense, { key: generateLicenseKey(), reason: "x" }, server.staffToken))).toEqual(["LICENSE_NOT_FOUND"]);
    expect(errorCodes(await server.graphql(deactivateLicense, { key: customer.key, reason: "  " }, server.staffToken))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await activate({ key: customer.key, device: { fingerprint: "x".repeat(129) } }))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await activate({ key: customer.key, device: { fingerprint: "ok", name: "n".repeat(101) } }))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await server.graphql(deactivateDevice, { id: "00000000-0000-4000-8000-000000000000" }, server.staffToken))).toEqual(["DEVICE_NOT_FOUND"]);
    expect(errorCodes(await server.graphql(deactivateDevice, { id: "not-a-uuid" }, server.staffToken))).toEqual(["DEVICE_NOT_FOUND"]);
  });
});

describe("rate limits on failed activations", () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({
      environment: { TRUST_PROXY: "loopback", ACTIVATION_FAILURES_PER_ADDRESS_MAX: "5", ACTIVATION_FAILURES_PER_KEY_MAX: "3" },
    });
  });
  afterAll(() => limited.close());
  const attempt = (key: string, address: string) => limited.graphql(activateMutation, { input: { key } }, undefined, { "x-forwarded-for": address });

  it("blocks an address after repeated failed guesses with TOO_MANY_REQUESTS (429)", async () => {
    for (let guess = 0; guess < 5; guess += 1) expect(errorCodes(await attempt(generateLicenseKey(), "192.0.2.10"))).toEqual(["LICENSE_NOT_FOUND"]);
    const blocked = await attempt(generateLicenseKey(), "192.0.2.10");
    expect(blocked.status).toBe(429);
    expect(errorCodes(blocked)).toEqual(["TOO_MANY_REQUESTS"]);
    expect(blocked.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(0);
    expect(blocked.headers.get("retry-after")).toBe(String(blocked.errors![0]!.extensions!.retryAfterSeconds));
    expect(errorCodes(await attempt(generateLicenseKey(), "192.0.2.11"))).toEqual(["LICENSE_NOT_FOUND"]);
  });

  it("64 simultaneous wrong guesses from one address: exactly the limit are evaluated, the rest get 429", async () => {
    const answers = await Promise.all(Array.from({ length: 64 }, () => attempt(generateLicenseKey(), "192.0.2.64")));
    const codes = answers.flatMap((answer) => errorCodes(answer));
    expect(codes.filter((code) => code === "LICENSE_NOT_FOUND")).toHaveLength(5);
    expect(codes.filter((code) => code === "TOO_MANY_REQUESTS")).toHaveLength(59);
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(59);
  });

  it("blocks one key guessed from many addresses", async () => {
    const key = generateLicenseKey();
    for (let address = 1; address <= 3; address += 1) expect(errorCodes(await attempt(key, `198.51.100.${address}`))).toEqual(["LICENSE_NOT_FOUND"]);
    expect(errorCodes(await attempt(key, "198.51.100.99"))).toEqual(["TOO_MANY_REQUESTS"]);
  });

  it("does not count successful activations of a valid key", async () => {
    const customer = await limited.createCustomer({ initialSeconds: 0 });
    const issued: any = await limited.graphql(issueMutation, { id: customer.id }, limited.staffToken);
    for (let call = 0; call < 12; call += 1) {
      expect((await attempt(issued.data.issueLicense.license.key, "203.0.113.7")).errors).toBeUndefined();
    }
  });
});
