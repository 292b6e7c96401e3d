import net from 'node:net';

/**
 * A TCP proxy on loopback between a client and a server, to cut the network under a live
 * WebSocket: `down()` drops every connection without a close frame (as a lost Wi-Fi does)
 * and refuses new ones until `up()`.
 */
export class TcpProxy {
  /** When each incoming connection was accepted or refused (performance.now()). */
  readonly attempts: number[] = [];
  private readonly sockets = new Set<net.Socket>();
  private open = true;
  /** Where new connections go (`retarget` moves it). */
  private target: { hostname: string; port: number } = { hostname: '', port: 0 };

  private constructor(
    private readonly server: net.Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = net.createServer((client) => {
      proxy!.attempts.push(performance.now());
      if (!proxy!.open) return client.destroy();
      const upstream = net.connect(proxy!.target.port, proxy!.target.hostname);
      for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
        proxy!.sockets.add(a);
        a.on('data', (chunk) => b.write(chunk));
        a.on('error', () => b.destroy());
        a.on('close', () => {
          proxy!.sockets.delete(a);
          b.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port: own } = server.address() as net.AddressInfo;
    proxy = new TcpProxy(server, `ws://127.0.0.1:${own}/`);
    proxy.retarget(target);
    return proxy;
  }

  /** Send new connections to another server (one already open stays where it is). */
  retarget(target: string): void {
    const { hostname, port } = new URL(target);
    this.target = { hostname, port: Number(port) };
  }

  /** Cut every connection (no close frame) and refuse new ones. */
  down(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }

  up(): void {
    this.open = true;
  }

  close(): Promise<void> {
    this.down();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
