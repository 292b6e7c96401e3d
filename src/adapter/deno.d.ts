/**
 * The slice of Deno's API that signalbox uses, so `bun check` type-checks the Deno adapter
 * and entry without Deno's toolchain. Deno itself ignores this file (nothing imports it) and
 * uses its own, complete declarations. Add a member here when the code starts using it.
 */
declare global {
  namespace Deno {
    interface NetAddr {
      transport: 'tcp' | 'udp';
      hostname: string;
      port: number;
    }
    interface UnixAddr {
      transport: 'unix' | 'unixpacket';
      path: string;
    }
    type Addr = NetAddr | UnixAddr;
    interface ServeHandlerInfo<A extends Addr = Addr> {
      remoteAddr: A;
    }
    interface ServeOptions {
      port?: number;
      hostname?: string;
      /** PEM certificate chain and private key (both, or neither): serve https/wss. */
      cert?: string;
      key?: string;
      /** Called once listening; given, it replaces Deno's own "Listening on" line. */
      onListen?: (addr: NetAddr) => void;
      handler: (request: Request, info: ServeHandlerInfo) => Response | Promise<Response>;
    }
    interface HttpServer {
      readonly addr: NetAddr;
      readonly finished: Promise<void>;
      /** Stop accepting and wait for the requests (and upgraded sockets) in flight. */
      shutdown(): Promise<void>;
    }
    function serve(options: ServeOptions): HttpServer;

    interface UpgradeWebSocketOptions {
      protocol?: string;
      idleTimeout?: number;
    }
    function upgradeWebSocket(request: Request, options?: UpgradeWebSocketOptions): { socket: WebSocket; response: Response };

    function readTextFileSync(path: string): string;
    function memoryUsage(): { rss: number; heapTotal: number; heapUsed: number; external: number };
    type Signal = 'SIGINT' | 'SIGTERM';
    function addSignalListener(signal: Signal, handler: () => void): void;
    function exit(code?: number): never;
    const args: string[];
    const env: { toObject(): Record<string, string> };
    const build: { os: 'linux' | 'darwin' | 'windows' | 'freebsd' | 'netbsd' | 'aix' | 'solaris' | 'illumos' | 'android' };
    const version: { deno: string; v8: string; typescript: string };
  }
}

export {};
