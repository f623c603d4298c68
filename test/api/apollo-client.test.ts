// The dashboard's and the plugin's way in: Apollo Client with a default InMemoryCache, over HTTP.
// After a reservation and its confirmation the cached `me.balance` must show the new balance
// without a refetch: the payloads return the Customer, which the cache normalizes by id.
import { ApolloClient, gql, HttpLink, InMemoryCache } from "@apollo/client";
import { startTestServer, type TestServer } from "../support/test-server";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const me = gql`
  query Me {
    me {
      id
      email
      balance {
        secondsRemaining
        secondsReserved
      }
    }
  }
`;

const reserve = gql`
  mutation Reserve($input: ReserveCreditsInput!) {
    reserveCredits(input: $input) {
      reservation {
        id
        status
      }
      customer {
        id
        balance {
          secondsRemaining
          secondsReserved
        }
      }
    }
  }
`;

const confirm = gql`
  mutation Confirm($input: ConfirmReservationInput!) {
    confirmReservation(input: $input) {
      reservation {
        id
        status
        chargedSeconds
      }
      customer {
        id
        balance {
          secondsRemaining
          secondsReserved
        }
      }
    }
  }
`;

function clientWith(token: string | undefined): ApolloClient {
  return new ApolloClient({
    link: new HttpLink({ uri: `${server.baseUrl}/graphql`, headers: token ? { authorization: `Bearer ${token}` } : {} }),
    cache: new InMemoryCache(),
  });
}

type MeData = { me: { id: string; email: string; balance: { secondsRemaining: number; secondsReserved: number } } };

async function reserveAndConfirm(client: ApolloClient, estimatedSeconds: number, actualSeconds: number): Promise<void> {
  const reserved = await client.mutate<{ reserveCredits: { reservation: { id: string } } }>({
    mutation: reserve,
    variables: { input: { estimatedSeconds, endpoint: "render/stem" } },
  });
  expect(client.readQuery<MeData>({ query: me })?.me.balance).toEqual({
    __typename: "CreditBalance",
    secondsRemaining: 3600 - estimatedSeconds,
    secondsReserved: estimatedSeconds,
  });
  await client.mutate({
    mutation: confirm,
    variables: { input: { reservationId: reserved.data!.reserveCredits.reservation.id, actualSeconds } },
  });
}

it("a customer's dashboard sees the new balance in its cache after reserving and confirming", async () => {
  const customer = await server.createCustomer({ initialSeconds: 3600 });
  const client = clientWith(customer.token);
  const before = await client.query<MeData>({ query: me });
  expect(before.data?.me.balance.secondsRemaining).toBe(3600);

  await reserveAndConfirm(client, 600, 450);

  const cached = await client.query<MeData>({ query: me, fetchPolicy: "cache-only" });
  expect(cached.data?.me).toEqual({
    __typename: "Customer",
    id: customer.id,
    email: customer.email,
    balance: { __typename: "CreditBalance", secondsRemaining: 3150, secondsReserved: 0 },
  });
  const fromServer = await client.query<MeData>({ query: me, fetchPolicy: "network-only" });
  expect(fromServer.data?.me.balance).toEqual(cached.data?.me.balance);
});

it("the plugin activates its key, then reserves and confirms with its device token, its cache in step", async () => {
  const customer = await server.createCustomer({ initialSeconds: 3600 });
  const issued: any = await server.graphql(
    `mutation($id: ID!) { issueLicense(input: { customerId: $id }) { license { key } } }`,
    { id: customer.id },
    server.staffToken,
  );
  const key: string = issued.data.issueLicense.license.key;

  const anonymous = clientWith(undefined);
  const activated = await anonymous.mutate<{ activateLicense: { deviceToken: string; customerId: string } }>({
    mutation: gql`
      mutation Activate($input: ActivateLicenseInput!) {
        activateLicense(input: $input) {
          customerId
          deviceToken
          device {
            id
            fingerprint
          }
        }
      }
    `,
    variables: { input: { key, device: { fingerprint: "studio-mac-apollo", name: "Studio Mac" } } },
  });
  expect(activated.data?.activateLicense.customerId).toBe(customer.id);

  const plugin = clientWith(activated.data!.activateLicense.deviceToken);
  await plugin.query<MeData>({ query: me });
  await reserveAndConfirm(plugin, 900, 1200);
  const cached = await plugin.query<MeData>({ query: me, fetchPolicy: "cache-only" });
  expect(cached.data?.me.balance).toEqual({ __typename: "CreditBalance", secondsRemaining: 2400, secondsReserved: 0 });
});
