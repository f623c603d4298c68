// A TCP proxy between the API and PostgreSQL that can stop forwarding without closing anything:
// to both ends the connection stays open and silent, as in a network partition or a frozen
// host. New connections are accepted and held silent too. Resuming forwards what was held.
import net from "node:net";

interface Pair {
  client: net.Socket;
  server: net.Socket;
  /** Bytes received while stalled, in order, with the socket they are for. */
  held: { to: net.Socket; chunk: Buffer }[];
  /** One end closed while stalled: the other learns of it only when the partition ends. */
  closedWhileStalled: boolean;
}

export class StallingProxy {
  private stalled = false;
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly listener: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<StallingProxy> {
    let proxy: StallingProxy | undefined;
    const listener = net.createServer((client) => proxy!.connect(client, targetPort, targetHost));
    listener.on("error", () => undefined);
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    proxy = new StallingProxy(listener, (listener.address() as net.AddressInfo).port);
    return proxy;
  }

  /** The same URL, through the proxy. */
  urlFor(directUrl: string): string {
    const url = new URL(directUrl);
    url.port = String(this.port);
    return url.toString();
  }

  get connectionCount(): number {
    return this.pairs.size;
  }

  stall(): void {
    this.stalled = true;
  }

  /** Forwards again, what was held first. */
  resume(): void {
    this.stalled = false;
    for (const pair of [...this.pairs]) {
      if (pair.closedWhileStalled) this.end(pair);
      else for (const { to, chunk } of pair.held.splice(0)) to.write(chunk);
    }
  }

  async close(): Promise<void> {
    for (const { client, server } of this.pairs) {
      client.destroy();
      server.destroy();
    }
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  private end(pair: Pair): void {
    this.pairs.delete(pair);
    pair.client.destroy();
    pair.server.destroy();
  }

  private connect(client: net.Socket, targetPort: number, targetHost: string): void {
    const server = net.connect(targetPort, targetHost);
    const pair: Pair = { client, server, held: [], closedWhileStalled: false };
    this.pairs.add(pair);
    const end = () => {
      if (this.stalled) pair.closedWhileStalled = true;
      else this.end(pair);
    };
    const forward = (to: net.Socket) => (chunk: Buffer) => {
      if (this.stalled) pair.held.push({ to, chunk });
      else to.write(chunk);
    };
    client.on("data", forward(server));
    server.on("data", forward(client));
    for (const socket of [client, server]) {
      socket.on("error", end);
      socket.on("close", end);
    }
  }
}
