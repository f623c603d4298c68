// A local identity provider: real key pairs, a real JWKS over HTTP, tokens signed with jose.
// Tests rotate its keys and make its key set unreachable.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";

export type SigningAlgorithm = "RS256" | "ES256" | "EdDSA";

interface SigningKey {
  keyId: string;
  algorithm: SigningAlgorithm;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface IdentityProvider {
  issuer: string;
  jwksUrl: string;
  /** How many times the key set was fetched. */
  fetches(): number;
  /** Adds a key that signs from now on; published keys stay published unless `retire`d. */
  rotate(algorithm?: SigningAlgorithm): Promise<string>;
  /** Stops publishing a key (a key the provider lost or withdrew). */
  retire(keyId: string): void;
  /** The key set answers 500 while down. */
  setDown(down: boolean): void;
  /** A JWT signed with the current key (or the key named), with iat/exp defaults. */
  sign(claims: JWTPayload, options?: { keyId?: string; ttlSeconds?: number; issuedAtSeconds?: number; withoutKeyId?: boolean }): Promise<string>;
  close(): Promise<void>;
}

export async function newSigningKey(algorithm: SigningAlgorithm, keyId: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(algorithm, { extractable: true });
  return { keyId, algorithm, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid: keyId, alg: algorithm, use: "sig" } };
}

export async function signWith(key: SigningKey, claims: JWTPayload, issuedAtSeconds: number, ttlSeconds: number, withoutKeyId = false): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.algorithm, typ: "JWT", ...(withoutKeyId ? {} : { kid: key.keyId }) })
    .setIssuedAt(issuedAtSeconds)
    .setExpirationTime(issuedAtSeconds + ttlSeconds)
    .sign(key.privateKey);
}

export async function startIdentityProvider(): Promise<IdentityProvider> {
  const keys: SigningKey[] = [];
  const published = new Set<string>();
  let fetchCount = 0;
  let down = false;

  const server = http.createServer((request, response) => {
    if (request.url !== "/.well-known/jwks.json") {
      response.writeHead(404).end();
      return;
    }
    fetchCount += 1;
    if (down) {
      response.writeHead(500).end();
      return;
    }
    const jwks = { keys: keys.filter((key) => published.has(key.keyId)).map((key) => key.publicJwk) };
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const provider: IdentityProvider = {
    issuer: `${baseUrl}/`,
    jwksUrl: `${baseUrl}/.well-known/jwks.json`,
    fetches: () => fetchCount,
    async rotate(algorithm = "RS256") {
      const key = await newSigningKey(algorithm, `key-${keys.length + 1}`);
      keys.push(key);
      published.add(key.keyId);
      return key.keyId;
    },
    retire(keyId) {
      published.delete(keyId);
    },
    setDown(value) {
      down = value;
    },
    async sign(claims, options = {}) {
      const key = options.keyId ? keys.find((candidate) => candidate.keyId === options.keyId) : keys.at(-1);
      if (!key) throw new Error("the identity provider has no such key");
      const issuedAtSeconds = options.issuedAtSeconds ?? Math.floor(Date.now() / 1000);
      return signWith(key, { iss: provider.issuer, ...claims }, issuedAtSeconds, options.ttlSeconds ?? 600, options.withoutKeyId);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  await provider.rotate();
  return provider;
}
