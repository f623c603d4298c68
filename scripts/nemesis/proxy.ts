// A TCP proxy between the instances and PostgreSQL that can stop forwarding: a real partition.
// While partitioned it reads nothing from either side and opens nothing upstream, so bytes wait
// in the kernel's buffers and new connections wait for their upstream, as packets would under a
// network split that heals before TCP gives up; when it heals everything flows again.
import net from "node:net";

/** How long an ended socket may flush before it is destroyed. */
const endGraceMs = 1000;

interface Pipe {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

export class PartitionProxy {
  private readonly pipes = new Set<Pipe>();
  private partitioned = false;
  /** Errors on proxied sockets: expected when PostgreSQL or an instance dies; counted for the report. */
  socketErrors = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly upstreamPort: number,
  ) {
    server.on("connection", (client) => this.accept(client));
  }

  static async start(upstreamPort: number): Promise<PartitionProxy> {
    const server = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
    });
    const proxy = new PartitionProxy(server, port, upstreamPort);
    server.on("error", () => (proxy.socketErrors += 1));
    return proxy;
  }

  get isPartitioned(): boolean {
    return this.partitioned;
  }

  partition(): void {
    this.partitioned = true;
    for (const pipe of this.pipes) {
      pipe.client.pause();
      pipe.upstream?.pause();
    }
  }

  heal(): void {
    this.partitioned = false;
    for (const pipe of this.pipes) {
      if (!pipe.upstream) this.connectUpstream(pipe);
      pipe.client.resume();
      pipe.upstream?.resume();
    }
  }

  async close(): Promise<void> {
    for (const pipe of this.pipes) {
      pipe.client.destroy();
      pipe.upstream?.destroy();
    }
    this.pipes.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const pipe: Pipe = { client, upstream: undefined };
    this.pipes.add(pipe);
    client.on("error", () => (this.socketErrors += 1));
    client.on("close", () => this.drop(pipe));
    client.pause();
    if (!this.partitioned) this.connectUpstream(pipe);
  }

  private connectUpstream(pipe: Pipe): void {
    const upstream = net.connect(this.upstreamPort, "127.0.0.1");
    pipe.upstream = upstream;
    upstream.on("error", () => (this.socketErrors += 1));
    upstream.on("close", () => this.drop(pipe));
    // Piped by hand (not stream.pipe) so that pausing a socket stops both directions at once.
    pipe.client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => pipe.client.write(chunk));
    if (this.partitioned) upstream.pause();
    else pipe.client.resume();
  }

  /** Ends both sides, letting what one side said last (PostgreSQL's FATAL) reach the other. */
  private drop(pipe: Pipe): void {
    if (!this.pipes.delete(pipe)) return;
    for (const socket of [pipe.client, pipe.upstream]) {
      if (!socket) continue;
      socket.end();
      setTimeout(() => socket.destroy(), endGraceMs).unref();
    }
  }
}
