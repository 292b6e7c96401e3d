import type { Conn, ConnState, Delivery } from '../signaling/types.ts';

/**
 * Bun's topics, in memory, for runtimes that have none (Deno; later any single process that
 * needs them). Runtime-free: it sees sockets only through the standard `WebSocket` surface.
 *
 * The registry is one `Map<topic, Set<conn>>`; each connection also remembers its own topics,
 * so a closing connection leaves every topic it held and an emptied topic is deleted. A
 * server that saw a million users come and go holds nothing for them afterwards.
 */
export class MemoryTopics implements Delivery {
  private readonly topics = new Map<string, Set<MemoryConn>>();

  /**
   * Send `frame` to every subscriber of `topic`. Returns the bytes queued in total, so 0
   * means nobody (still open) is subscribed: the user is offline, as with `server.publish`.
   */
  publish(topic: string, frame: string): number {
    const members = this.topics.get(topic);
    if (members === undefined) return 0;
    let reached = 0;
    for (const conn of members) if (conn.push(frame)) reached++;
    return reached === 0 ? 0 : reached * utf8Length(frame);
  }

  subscribe(conn: MemoryConn, topic: string): void {
    let members = this.topics.get(topic);
    if (members === undefined) this.topics.set(topic, (members = new Set()));
    members.add(conn);
    conn.topics.add(topic);
  }

  unsubscribe(conn: MemoryConn, topic: string): void {
    conn.topics.delete(topic);
    const members = this.topics.get(topic);
    if (members === undefined) return;
    members.delete(conn);
    if (members.size === 0) this.topics.delete(topic);
  }

  /** Leave every topic `conn` holds. */
  unsubscribeAll(conn: MemoryConn): void {
    for (const topic of conn.topics) this.unsubscribe(conn, topic);
  }

  /** How many connections are subscribed to `topic`. */
  subscribers(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  /** How many topics have at least one subscriber. */
  get size(): number {
    return this.topics.size;
  }
}

/** The part of a standard `WebSocket` a MemoryConn drives. */
export interface SocketLike {
  readonly readyState: number;
  /** Bytes queued by send() and not yet handed to the network. */
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

const OPEN = 1;

export interface MemoryConnOptions {
  /** Bytes queued for a client that does not read before it is dropped (0 = no limit). */
  backpressureLimit?: number;
  /**
   * Called once when the connection is dropped for backpressure. Its close handshake
   * cannot finish behind the queue, so the close event may not come for minutes: the owner
   * should end the connection's session now, outside the current call stack.
   */
  onOverflow?: (conn: MemoryConn) => void;
}

/**
 * A socket as the core sees it (`Conn`), with Bun's semantics: `send` returns the bytes
 * queued or 0 when the socket can no longer take them, topics live in a MemoryTopics, and
 * a client that stops reading is dropped at the backpressure limit (Bun's
 * `closeOnBackpressureLimit`).
 */
export class MemoryConn implements Conn {
  /** The topics this connection is subscribed to (kept for the cleanup on close). */
  readonly topics = new Set<string>();
  private gone = false;
  private readonly backpressureLimit: number;
  private readonly onOverflow: ((conn: MemoryConn) => void) | undefined;

  constructor(
    readonly data: ConnState,
    private readonly socket: SocketLike,
    private readonly registry: MemoryTopics,
    { backpressureLimit = 0, onOverflow }: MemoryConnOptions = {},
  ) {
    this.backpressureLimit = backpressureLimit;
    this.onOverflow = onOverflow;
  }

  send(frame: string): number {
    return this.push(frame) ? utf8Length(frame) : 0;
  }

  /** Queue `frame`; false when the socket can no longer take it. */
  push(frame: string): boolean {
    if (this.socket.readyState !== OPEN) return false;
    if (this.backpressureLimit > 0 && this.socket.bufferedAmount > this.backpressureLimit) {
      this.overflow();
      return false;
    }
    try {
      this.socket.send(frame);
      return true;
    } catch {
      // The socket closed between the check and the send: as good as offline.
      return false;
    }
  }

  subscribe(topic: string): void {
    // A subscription that arrives after the close (an asynchronous login that finished
    // late) must not leave a topic behind that nothing will ever clean up.
    if (!this.gone) this.registry.subscribe(this, topic);
  }

  unsubscribe(topic: string): void {
    this.registry.unsubscribe(this, topic);
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  private overflow(): void {
    this.closed();
    this.socket.close(1008, 'backpressure limit');
    this.onOverflow?.(this);
  }

  /** The socket has closed: leave every topic. Call before telling the hub. */
  closed(): void {
    this.gone = true;
    this.registry.unsubscribeAll(this);
  }
}

/** The UTF-8 size of `s`, counted without encoding it. */
export function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
      continue;
    }
    // 3 bytes for the rest of the BMP and for a lone surrogate (sent as U+FFFD); a surrogate
    // pair is 2 UTF-16 units and 4 bytes, so it adds 2 as well and skips its second half.
    bytes += 2;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return bytes;
}
