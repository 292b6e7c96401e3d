/**
 * A small WebSocket client on Bun's raw TCP sockets, for load generation only.
 *
 * Why not Bun's own `WebSocket`: it makes one system call per message and saturates the
 * generator's core long before a Bun server is saturated, and it ignores a local address.
 * This client queues frames and writes everything one event-loop turn produced in one
 * `write`, binds to any loopback source address, and lets a scenario pre-build (and
 * pre-mask) a frame it sends many times. Every server under test gets this same client.
 *
 * Frames from the server are handed over as (bytes, start, end) without copying or
 * decoding; a scenario that wants text calls `textOf`.
 */
import type { Socket, TCPSocketConnectOptions } from 'bun';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const OP_TEXT = 1;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

export interface ConnectOptions {
  host: string;
  port: number;
  /** Request path and query, e.g. `/` or `/peerjs?id=a&token=t&key=peerjs`. */
  path?: string;
  /** Loopback source address (127.0.0.2, …): spreads ports past the kernel's per-address search. */
  localAddress?: string;
  /** Give up on the TCP connect plus the upgrade after this long. */
  timeoutMs?: number;
}

export type TextHandler = (conn: WsConn, bytes: Uint8Array, start: number, end: number, now: number) => void;

/** Mask `len` bytes of `buf` from `at` in place with a 4-byte key (RFC 6455 §5.3). */
function maskInPlace(buf: Uint8Array, at: number, len: number, key: Uint8Array): void {
  for (let i = 0; i < len; i++) buf[at + i]! ^= key[i & 3]!;
}

/** A complete client frame (header, mask key, masked payload), built once and sent many times. */
export function buildFrame(payload: string | Uint8Array, opcode = OP_TEXT): Uint8Array {
  const body = typeof payload === 'string' ? encoder.encode(payload) : payload;
  const len = body.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = new Uint8Array(head + 4 + len);
  frame[0] = 0x80 | opcode;
  if (len < 126) frame[1] = 0x80 | len;
  else if (len < 65536) {
    frame[1] = 0x80 | 126;
    frame[2] = len >>> 8;
    frame[3] = len & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(len));
  }
  const key = frame.subarray(head, head + 4);
  crypto.getRandomValues(key);
  frame.set(body, head + 4);
  maskInPlace(frame, head + 4, len, key);
  return frame;
}

export const textOf = (bytes: Uint8Array, start: number, end: number): string =>
  decoder.decode(bytes.subarray(start, end));

/** True when the frame's payload starts with `prefix` (compared as bytes, no decoding). */
export function startsWith(bytes: Uint8Array, start: number, end: number, prefix: Uint8Array): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[start + i] !== prefix[i]) return false;
  return true;
}

export const bytesOf = (s: string): Uint8Array => encoder.encode(s);

const EMPTY = new Uint8Array(0);

// Connections with queued output; flushed together at the end of each socket callback.
const dirty: WsConn[] = [];
let flushScheduled = false;

/** Write every queued frame of every connection (one `write` per connection). */
export function flushAll(): void {
  flushScheduled = false;
  for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
  dirty.length = 0;
}
const scheduleFlush = () => {
  if (!flushScheduled) {
    flushScheduled = true;
    queueMicrotask(flushAll);
  }
};

export class WsConn {
  socket: Socket<WsConn> | null = null;
  state: 'connecting' | 'open' | 'closing' | 'closed' = 'connecting';
  /** Called for each text frame; set it with `listen` (frames that came earlier are kept). */
  onText: TextHandler = (_c, bytes, start, end) => {
    (this.early ??= []).push(bytes.slice(start, end));
  };
  private early: Uint8Array[] | null = null;
  /** Called once when the TCP connection is gone, for any reason. */
  onClosed: (conn: WsConn) => void = () => {};
  /** Close code the server sent, if any. */
  closeCode = 0;
  /** Scenario-owned slot (e.g. the pair this connection belongs to). */
  tag: any = null;

  // Grown on first use: a holder keeps ~19,000 idle connections, and 16 KB each up front
  // would make the generators, not the servers, the memory the capacity runs are sized by.
  private out = EMPTY;
  private outLen = 0;
  private queued = false;
  /** Bytes a short write left behind, written on `drain`. */
  private backlog: Uint8Array | null = null;
  /** An incomplete frame (or HTTP response) carried over from the previous read. */
  private carry: Uint8Array | null = null;
  private fragments: Uint8Array[] | null = null;
  private expectAccept = '';
  private openResolve: ((c: WsConn) => void) | null = null;
  private openReject: ((e: Error) => void) | null = null;
  private closeWaiters: Array<() => void> = [];

  /** Handle text frames with `handler`, first replaying any that arrived before (e.g. right after the upgrade). */
  listen(handler: TextHandler): void {
    this.onText = handler;
    const early = this.early;
    this.early = null;
    if (early !== null) {
      const now = performance.now();
      for (const f of early) handler(this, f, 0, f.length, now);
    }
  }

  /** Queue a pre-built frame; it is written with everything else queued this turn. */
  send(frame: Uint8Array): void {
    const need = this.outLen + frame.length;
    if (need > this.out.length) {
      const bigger = new Uint8Array(Math.max(need, this.out.length * 2, 1024));
      bigger.set(this.out.subarray(0, this.outLen));
      this.out = bigger;
    }
    this.out.set(frame, this.outLen);
    this.outLen = need;
    if (!this.queued) {
      this.queued = true;
      dirty.push(this);
      scheduleFlush();
    }
  }

  /** Frame, mask and queue a text message (for one-off messages; hot paths pre-build). */
  sendText(text: string): void {
    this.send(buildFrame(text));
  }

  flush(): void {
    this.queued = false;
    if (this.outLen === 0 || this.socket === null || this.state === 'closed') {
      this.outLen = 0;
      return;
    }
    let chunk = this.out.subarray(0, this.outLen);
    if (this.backlog !== null) {
      const joined = new Uint8Array(this.backlog.length + chunk.length);
      joined.set(this.backlog);
      joined.set(chunk, this.backlog.length);
      this.backlog = null;
      chunk = joined;
      this.outLen = 0;
      this.writeOrKeep(chunk, true);
      return;
    }
    this.writeOrKeep(chunk, false);
    this.outLen = 0;
  }

  private writeOrKeep(chunk: Uint8Array, owned: boolean): void {
    const n = this.socket!.write(chunk);
    if (n < chunk.length) {
      const rest = chunk.subarray(Math.max(n, 0));
      // `out` is reused, so keep a copy of what the kernel did not take.
      this.backlog = owned ? rest : rest.slice();
    }
  }

  /** @internal the socket can take more: write what a short write left behind. */
  drained(): void {
    if (this.backlog === null) return;
    const b = this.backlog;
    this.backlog = null;
    this.writeOrKeep(b, true);
  }

  /** Start the close handshake; resolves when the TCP connection is gone (or after timeoutMs). */
  close(code = 1000, timeoutMs = 5000): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    if (this.state === 'open') {
      this.state = 'closing';
      const payload = new Uint8Array([code >>> 8, code & 0xff]);
      this.send(buildFrame(payload, OP_CLOSE));
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.terminate();
        resolve();
      }, timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Drop the TCP connection without a close handshake. */
  terminate(): void {
    if (this.socket !== null && this.state !== 'closed') this.socket.terminate();
  }

  /** @internal */
  opened(socket: Socket<WsConn>, host: string, port: number, path: string): void {
    this.socket = socket;
    // Frames are already batched per event-loop turn; Nagle would only hold them back
    // behind the server's delayed ACKs (tens of ms at low rates).
    socket.setNoDelay(true);
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64');
    this.expectAccept = new Bun.CryptoHasher('sha1')
      .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  }

  /** @internal a chunk of bytes arrived. */
  received(chunk: Uint8Array, now: number): void {
    let buf = chunk;
    if (this.carry !== null) {
      const joined = new Uint8Array(this.carry.length + chunk.length);
      joined.set(this.carry);
      joined.set(chunk, this.carry.length);
      buf = joined;
      this.carry = null;
    }
    let at = 0;
    if (this.state === 'connecting') {
      at = this.upgradeResponse(buf);
      if (at < 0) return;
    }
    const end = buf.length;
    while (at + 2 <= end) {
      const b0 = buf[at]!;
      const b1 = buf[at + 1]!;
      let len = b1 & 0x7f;
      let head = 2;
      if (len === 126) {
        if (at + 4 > end) break;
        len = (buf[at + 2]! << 8) | buf[at + 3]!;
        head = 4;
      } else if (len === 127) {
        if (at + 10 > end) break;
        len = Number(new DataView(buf.buffer, buf.byteOffset + at + 2, 8).getBigUint64(0));
        head = 10;
      }
      if (b1 & 0x80) head += 4; // servers never mask; tolerate it by skipping the key
      if (at + head + len > end) break;
      const start = at + head;
      this.frame(b0, buf, start, start + len, now);
      at = start + len;
      if (this.state === 'closed') return;
    }
    // Copy: the runtime may reuse the chunk's memory after this callback returns.
    if (at < end) this.carry = buf.slice(at);
  }

  private frame(b0: number, buf: Uint8Array, start: number, end: number, now: number): void {
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode === OP_TEXT || opcode === 2 || opcode === 0) {
      if (!fin || this.fragments !== null) {
        (this.fragments ??= []).push(buf.slice(start, end));
        if (!fin) return;
        const whole = new Uint8Array(this.fragments.reduce((n, f) => n + f.length, 0));
        let o = 0;
        for (const f of this.fragments) {
          whole.set(f, o);
          o += f.length;
        }
        this.fragments = null;
        this.onText(this, whole, 0, whole.length, now);
        return;
      }
      this.onText(this, buf, start, end, now);
    } else if (opcode === OP_PING) {
      this.send(buildFrame(buf.slice(start, end), OP_PONG));
    } else if (opcode === OP_CLOSE) {
      this.closeCode = end - start >= 2 ? (buf[start]! << 8) | buf[start + 1]! : 1005;
      if (this.state === 'open') {
        // The server started the close: echo it, then let the server end the TCP connection.
        this.state = 'closing';
        this.send(buildFrame(buf.slice(start, Math.min(end, start + 2)), OP_CLOSE));
        this.flush();
      }
      this.socket?.end();
    }
  }

  /** Parse the HTTP response to the upgrade; returns where frames start, or -1 to wait. */
  private upgradeResponse(buf: Uint8Array): number {
    let i = 3;
    for (; i < buf.length; i++) {
      if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) break;
    }
    if (i >= buf.length) {
      if (buf.length > 16 * 1024) return this.fail(new Error('upgrade response too long')), -1;
      this.carry = buf.slice();
      return -1;
    }
    const head = decoder.decode(buf.subarray(0, i + 1));
    if (!head.startsWith('HTTP/1.1 101')) {
      this.fail(new Error(`upgrade refused: ${head.split('\r\n', 1)[0]}`));
      return -1;
    }
    const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
    if (accept !== this.expectAccept) {
      this.fail(new Error('upgrade response has a wrong Sec-WebSocket-Accept'));
      return -1;
    }
    this.state = 'open';
    const resolve = this.openResolve;
    this.openResolve = this.openReject = null;
    resolve?.(this);
    return i + 1;
  }

  private fail(err: Error): void {
    const reject = this.openReject;
    this.openResolve = this.openReject = null;
    reject?.(err);
    this.terminate();
  }

  /** @internal */
  gone(err?: Error): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.fail(err ?? new Error('connection closed during the upgrade'));
    for (const w of this.closeWaiters) w();
    this.closeWaiters = [];
    this.onClosed(this);
  }

  /** @internal */
  expectOpen(resolve: (c: WsConn) => void, reject: (e: Error) => void): void {
    this.openResolve = resolve;
    this.openReject = reject;
  }
}

const handlers = {
  open(socket: Socket<WsConn>) {
    const c = socket.data;
    c.opened(socket, c.tag.host, c.tag.port, c.tag.path);
  },
  data(socket: Socket<WsConn>, chunk: Uint8Array) {
    socket.data.received(chunk, performance.now());
    flushAll();
  },
  drain(socket: Socket<WsConn>) {
    socket.data.drained();
  },
  close(socket: Socket<WsConn>) {
    socket.data.gone();
  },
  error(socket: Socket<WsConn>, err: Error) {
    socket.data.gone(err);
  },
  connectError(socket: Socket<WsConn>, err: Error) {
    socket.data.gone(err);
  },
};

/** Open a WebSocket; resolves once the server accepted the upgrade. */
export function connect(opts: ConnectOptions): Promise<WsConn> {
  const { host, port, path = '/', localAddress, timeoutMs = 10_000 } = opts;
  const conn = new WsConn();
  // The tag carries the request details into the shared `open` handler, then belongs to the scenario.
  conn.tag = { host, port, path };
  return new Promise<WsConn>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`connect to ${host}:${port}${path} timed out after ${timeoutMs} ms`));
      conn.terminate();
    }, timeoutMs);
    conn.expectOpen(
      (c) => {
        clearTimeout(timer);
        c.tag = null;
        resolve(c);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
    // `localAddress` is missing from Bun's types but honoured (measured): it binds the client side.
    const options = { hostname: host, port, data: conn, socket: handlers, localAddress };
    Bun.connect<WsConn>(options as TCPSocketConnectOptions<WsConn>).catch((e: Error) => conn.gone(e));
  });
}
