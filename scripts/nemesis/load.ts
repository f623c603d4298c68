// The mixed load: money clients (reserve, then confirm, release, abandon, or confirm and release
// racing on two instances), plugins activating machines on licenses with few seats, and Stripe
// delivering signed webhooks duplicated and shuffled. Every client retries as a real one would:
// after its timeout, a network error or a 5xx, on the next instance, with the same idempotency
// key. What the answers said is in the log's records; the checks compare them with the database.
import { signedDelivery } from "../../test/support/fake-stripe";
import { graphqlCode, webhookCode, type HttpAnswer, type LoadClient } from "./client";
import { webhookSecret } from "./cluster";
import type { Fixtures, MoneyCustomer, PaymentEvent, SeatLicense } from "./fixtures";
import type { Operation, RequestRecord } from "./log";
import type { Random } from "./random";
import { sleep } from "./postgres";

const moneyClientsPerCustomer = 2;
const activationClients = 2;
const webhookLanes = 2;
/** Attempts of one operation before the client gives up on it (its outcome then stays unknown). */
const maxAttempts = 6;
const backoffBaseMs = 200;
const backoffMaxMs = 2000;
/** A 503's Retry-After is honoured up to this, so a long outage does not idle the load. */
const retryAfterCapMs = 2000;
const thinkMs = { min: 20, max: 80 };
/** Slow enough that an hour stays under CERTIFICATE_CHECKOUTS_PER_DEVICE_PER_HOUR (1000) per machine. */
const activationThinkMs = { min: 200, max: 600 };
const estimatedSeconds = { min: 5, max: 60 };
const fingerprintsPerLicense = 4;
/** After the load, undelivered payments are sent again (as Stripe retries) this often. */
const finalDeliveryAttempts = 30;
const finalDeliveryDelayMs = 500;
/** The share of each next step after a reservation. */
const actionWeights = { confirm: 0.45, release: 0.3, race: 0.15, abandon: 0.1 };
const activationRaceChance = 0.3;
const duplicateAtOnceChance = 0.3;

const reserveMutation = `mutation($input: ReserveCreditsInput!) { reserveCredits(input: $input) { reservation { id status reservedSeconds } } }`;
const confirmMutation = `mutation($id: ID!, $actual: NonNegativeInt!) { confirmReservation(input: { reservationId: $id, actualSeconds: $actual }) { reservation { id status actualSeconds chargedSeconds } } }`;
const releaseMutation = `mutation($id: ID!) { releaseReservation(input: { reservationId: $id, reason: "nemesis" }) { reservation { id status } } }`;
const activateMutation = `mutation($input: ActivateLicenseInput!) { activateLicense(input: $input) { customerId device { id fingerprint } license { maxDevices } } }`;

interface Call {
  operation: Operation;
  subject: RequestRecord["subject"];
  firstInstance: number;
  build: (instance: number) => { path: string; headers: Record<string, string>; body: string };
  codeOf: (status: number, body: any) => string;
  extract?: (body: any) => RequestRecord["answered"];
}

export class Load {
  private running = false;
  private loops: Promise<void>[] = [];
  private sequence = 0;
  /** Payments answered 200 PROCESSED or IGNORED at least once. */
  readonly deliveredPayments = new Set<string>();
  /** Reservations confirmed and released at once on two instances. */
  readonly racedReservations = new Set<string>();

  constructor(
    private readonly client: LoadClient,
    private readonly fixtures: Fixtures,
    private readonly random: Random,
    private readonly instanceCount: number,
  ) {}

  start(durationMs: number): void {
    this.running = true;
    const money = this.fixtures.customers.flatMap((customer) =>
      Array.from({ length: moneyClientsPerCustomer }, (_, lane) => this.moneyLoop(customer, this.random.fork(`money-${customer.id}-${lane}`))),
    );
    const activations = Array.from({ length: activationClients }, (_, lane) => this.activationLoop(this.random.fork(`activation-${lane}`)));
    this.loops = [...money, ...activations, this.webhookDeliveries(durationMs)];
  }

  /** Stops starting new work and waits for every client's current operation. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Stripe keeps retrying: every payment not yet answered 200 is sent again until it is. */
  async deliverRemaining(): Promise<void> {
    for (const payment of this.fixtures.payments) {
      for (let attempt = 1; attempt <= finalDeliveryAttempts && !this.deliveredPayments.has(payment.id); attempt += 1) {
        await this.deliver(payment, attempt % this.instanceCount, 1);
        if (!this.deliveredPayments.has(payment.id)) await sleep(finalDeliveryDelayMs);
      }
    }
  }

  private async moneyLoop(customer: MoneyCustomer, random: Random): Promise<void> {
    while (this.running) {
      const instance = random.int(0, this.instanceCount - 1);
      const key = `nemesis-${this.random.seed}-${(this.sequence += 1)}`;
      const seconds = random.int(estimatedSeconds.min, estimatedSeconds.max);
      const reserved = await this.reserve(customer, key, seconds, instance);
      const reservationId = reserved?.body?.data?.reserveCredits?.reservation?.id as string | undefined;
      if (reservationId) await this.settle(customer, reservationId, seconds, random);
      await sleep(random.int(thinkMs.min, thinkMs.max));
    }
  }

  private reserve(customer: MoneyCustomer, key: string, seconds: number, instance: number): Promise<HttpAnswer | undefined> {
    return this.withRetries({
      operation: "reserve",
      subject: { key, customerId: customer.id, estimatedSeconds: seconds },
      firstInstance: instance,
      build: () => graphqlRequest(customer.token, reserveMutation, { input: { estimatedSeconds: seconds, endpoint: "nemesis", idempotencyKey: key } }),
      codeOf: graphqlCode,
      extract: (body) => ({ reservationId: body?.data?.reserveCredits?.reservation?.id ?? null }),
    });
  }

  private async settle(customer: MoneyCustomer, reservationId: string, seconds: number, random: Random): Promise<void> {
    const draw = random.next();
    const actualSeconds = random.int(0, seconds + 10);
    const instance = random.int(0, this.instanceCount - 1);
    if (draw < actionWeights.confirm) {
      await this.confirm(customer, reservationId, actualSeconds, instance, false);
    } else if (draw < actionWeights.confirm + actionWeights.release) {
      await this.release(customer, reservationId, instance, false);
    } else if (draw < actionWeights.confirm + actionWeights.release + actionWeights.race) {
      this.racedReservations.add(reservationId);
      const other = (instance + 1) % this.instanceCount;
      await Promise.all([this.confirm(customer, reservationId, actualSeconds, instance, true), this.release(customer, reservationId, other, true)]);
    }
    // else abandoned: the job never reports back; the reservation expires.
  }

  private confirm(customer: MoneyCustomer, reservationId: string, actualSeconds: number, instance: number, race: boolean) {
    return this.withRetries({
      operation: "confirm",
      subject: { reservationId, customerId: customer.id, actualSeconds, race: race ? 1 : 0 },
      firstInstance: instance,
      build: () => graphqlRequest(customer.token, confirmMutation, { id: reservationId, actual: actualSeconds }),
      codeOf: graphqlCode,
      extract: (body) => {
        const reservation = body?.data?.confirmReservation?.reservation;
        return reservation ? { status: reservation.status, chargedSeconds: reservation.chargedSeconds, actualSeconds: reservation.actualSeconds } : undefined;
      },
    });
  }

  private release(customer: MoneyCustomer, reservationId: string, instance: number, race: boolean) {
    return this.withRetries({
      operation: "release",
      subject: { reservationId, customerId: customer.id, race: race ? 1 : 0 },
      firstInstance: instance,
      build: () => graphqlRequest(customer.token, releaseMutation, { id: reservationId }),
      codeOf: graphqlCode,
      extract: (body) => {
        const reservation = body?.data?.releaseReservation?.reservation;
        return reservation ? { status: reservation.status } : undefined;
      },
    });
  }

  private async activationLoop(random: Random): Promise<void> {
    while (this.running) {
      const license = random.pick(this.fixtures.licenses);
      const machines = random.chance(activationRaceChance) ? random.shuffle(range(fingerprintsPerLicense)).slice(0, 3) : [random.int(0, fingerprintsPerLicense - 1)];
      const first = random.int(0, this.instanceCount - 1);
      await Promise.all(machines.map((machine, index) => this.activate(license, machine, (first + index) % this.instanceCount)));
      await sleep(random.int(activationThinkMs.min, activationThinkMs.max));
    }
  }

  private activate(license: SeatLicense, machine: number, instance: number) {
    const fingerprint = `nemesis-machine-${machine}`;
    return this.withRetries({
      operation: "activate",
      subject: { licenseKey: license.key, fingerprint },
      firstInstance: instance,
      build: () => graphqlRequest("", activateMutation, { input: { key: license.key, device: { fingerprint, name: `Nemesis ${machine}` } } }),
      codeOf: graphqlCode,
      extract: (body) => {
        const activated = body?.data?.activateLicense;
        return activated ? { deviceId: activated.device?.id ?? null, maxDevices: activated.license?.maxDevices ?? null } : undefined;
      },
    });
  }

  /** Every payment one to three times, shuffled, spread over the load; some copies at once on two instances. */
  private async webhookDeliveries(durationMs: number): Promise<void> {
    const random = this.random.fork("webhooks");
    const copies = this.fixtures.payments.flatMap((payment) => Array.from({ length: random.int(1, 3) }, () => payment));
    const queue = random.shuffle(copies);
    const intervalMs = (durationMs * webhookLanes) / Math.max(1, queue.length);
    const lane = async () => {
      while (this.running && queue.length > 0) {
        const payment = queue.shift()!;
        const instance = random.int(0, this.instanceCount - 1);
        if (random.chance(duplicateAtOnceChance)) await Promise.all([this.deliver(payment, instance, maxAttempts), this.deliver(payment, (instance + 1) % this.instanceCount, maxAttempts)]);
        else await this.deliver(payment, instance, maxAttempts);
        await sleep(intervalMs);
      }
    };
    await Promise.all(Array.from({ length: webhookLanes }, lane));
  }

  private async deliver(payment: PaymentEvent, instance: number, attempts: number): Promise<void> {
    const answer = await this.withRetries(
      {
        operation: "webhook",
        subject: { eventId: payment.id, customerId: payment.customerId },
        firstInstance: instance,
        build: () => {
          // Signed at each attempt, as Stripe does: the signature's timestamp must be fresh.
          const { body, signature } = signedDelivery(payment.event, webhookSecret);
          return { path: "/webhooks/stripe", headers: { "content-type": "application/json", "stripe-signature": signature }, body };
        },
        codeOf: webhookCode,
        extract: (body) => ({ status: body?.status ?? null }),
      },
      attempts,
    );
    if (answer?.status === 200 && (answer.body?.status === "PROCESSED" || answer.body?.status === "IGNORED")) this.deliveredPayments.add(payment.id);
  }

  /**
   * One operation as a client makes it: retried after a timeout, a network error or a 5xx, on
   * the next instance; a 503's Retry-After is honoured. Returns the first answer that is not a
   * 5xx, or undefined when the client gave up.
   */
  private async withRetries(call: Call, attempts = maxAttempts): Promise<HttpAnswer | undefined> {
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      const instance = (call.firstInstance + attempt - 1) % this.instanceCount;
      const sent = await this.client.send({ ...call.build(instance), operation: call.operation, instance, attempt, subject: call.subject, codeOf: call.codeOf, extract: call.extract });
      if (sent.kind === "answer" && sent.status < 500) return sent;
      if (attempt < attempts) await sleep(this.retryDelayMs(sent.kind === "answer" ? sent.retryAfter : null, attempt));
    }
    return undefined;
  }

  private retryDelayMs(retryAfter: string | null, attempt: number): number {
    const retryAfterMs = retryAfter === null ? Number.NaN : Number(retryAfter) * 1000;
    if (Number.isFinite(retryAfterMs)) return Math.min(retryAfterMs, retryAfterCapMs);
    const backoffMs = Math.min(backoffMaxMs, backoffBaseMs * 2 ** (attempt - 1));
    return backoffMs / 2 + Math.random() * (backoffMs / 2);
  }
}

function graphqlRequest(token: string, query: string, variables: Record<string, unknown>) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  return { path: "/graphql", headers, body: JSON.stringify({ query, variables }) };
}

const range = (count: number) => Array.from({ length: count }, (_, index) => index);
