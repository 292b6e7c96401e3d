/**
 * Keep-alive pings spread evenly over an interval, and the close of a connection whose
 * ping goes unanswered.
 *
 * Why not Bun's own (`sendPings` with `idleTimeout`): uWebSockets sweeps its idle timers
 * in 4-second ticks and pings every socket whose timer ran out in one go, so sockets
 * opened within seconds of each other are pinged, and answer, in one burst every interval
 * (16,000 of them stalled a node for 90–360 ms; docs/benchmarks.md). Here a timer pings a
 * slice of the connections every tick instead, so a pass over all of them takes the whole
 * interval.
 *
 * Bun's idle timer cannot judge the answers: a ping the server sends resets it, so a
 * peer that never answers would be kept open by the pings themselves (measured on Bun
 * 1.4.4). So the pinged connections wait in a map until their pong comes; one still
 * waiting when the next pass reaches it is closed. Only pings in flight are in the map:
 * an idle connection costs nothing here beyond its entry in the hub's set.
 *
 * A connection is pinged about once per `intervalMs` and closed between one and two
 * intervals after it stopped answering.
 */
export interface KeepaliveOptions<C> {
  /** The open connections (the hub's set, live: connections come and go during a pass). */
  conns: ReadonlySet<C>;
  /** A pass over every connection takes this long. */
  intervalMs: number;
  ping(conn: C): void;
  /** The connection did not answer: close it. */
  dead(conn: C): void;
  now?: () => number;
}

/** Ticks are at least this far apart (a few connections: one tick per connection, up to MAX_TICK_MS). */
const MIN_TICK_MS = 100;
/** …and at most this far, so a pass starts soon after connections arrive at an idle server. */
const MAX_TICK_MS = 1000;

export class Keepalive<C> {
  private readonly conns: ReadonlySet<C>;
  private readonly intervalMs: number;
  private readonly ping: (conn: C) => void;
  private readonly dead: (conn: C) => void;
  private readonly now: () => number;
  /** When each connection pinged and not answered yet was pinged. */
  private readonly waiting = new Map<C, number>();
  /** Where the pass under way is; null between passes. */
  private cursor: Iterator<C> | null = null;
  private passStart = -Infinity;
  /** Connections owed a visit (fractional: a few connections get one every few ticks). */
  private credit = 0;
  private last = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;

  constructor({ conns, intervalMs, ping, dead, now = () => performance.now() }: KeepaliveOptions<C>) {
    this.conns = conns;
    this.intervalMs = intervalMs;
    this.ping = ping;
    this.dead = dead;
    this.now = now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /** A connection opened: an idle server's timer, asleep with no connections, starts again. */
  wake(): void {
    if (!this.running || this.timer !== undefined) return;
    this.last = this.now();
    this.schedule();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.cursor = null;
    this.waiting.clear();
  }

  /** A pong came back. */
  answered(conn: C): void {
    this.waiting.delete(conn);
  }

  /** The connection closed. */
  forget(conn: C): void {
    this.waiting.delete(conn);
  }

  private schedule(): void {
    const n = this.conns.size;
    // Nobody connected: no wake-ups at all until someone is (wake()).
    if (n === 0 && this.waiting.size === 0) {
      this.timer = undefined;
      this.cursor = null;
      return;
    }
    const every = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, this.intervalMs / Math.max(n, 1)));
    this.timer = setTimeout(() => this.tick(), every);
    // The server keeps the process alive, not its pings.
    this.timer.unref?.();
  }

  private tick(): void {
    const now = this.now();
    const n = this.conns.size;
    // Owed in proportion to the time that passed (a late tick catches up), at most a
    // second's worth: a stalled process does not make up for it in one burst.
    this.credit = Math.min(this.credit + (n * (now - this.last)) / this.intervalMs, (n * MAX_TICK_MS) / this.intervalMs + 1);
    this.last = now;
    while (this.credit >= 1) {
      if (this.cursor === null) {
        // A pass ended early (connections left): the next one waits for its time.
        if (now - this.passStart < this.intervalMs) {
          this.credit = 0;
          break;
        }
        this.cursor = this.conns.values();
        this.passStart = now;
      }
      const next = this.cursor.next();
      if (next.done) {
        this.cursor = null;
        continue;
      }
      this.credit--;
      this.visit(next.value, now);
    }
    this.schedule();
  }

  private visit(conn: C, now: number): void {
    const sent = this.waiting.get(conn);
    if (sent === undefined) {
      this.waiting.set(conn, now);
      this.ping(conn);
    } else if (now - sent >= this.intervalMs / 2) {
      // Judged only on a ping that had time to come back: passes are an interval apart,
      // but connections leaving ahead of this one can bring its turn early.
      this.waiting.delete(conn);
      this.dead(conn);
    }
  }
}
