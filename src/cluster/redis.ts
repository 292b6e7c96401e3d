import { RedisClient } from 'bun';
import type { Logger } from '../log.ts';
import type { Hub } from '../signaling/hub.ts';
import type { Cluster, Envelope, Face, Handover } from '../signaling/types.ts';

export interface RedisClusterOptions {
  url: string;
  /** Prefix of every key and channel, so several deployments can share one Redis. */
  prefix?: string;
  /** A node's lease lasts this long past its last refresh: how long a crashed node's users still look alive. */
  presenceTtlMs?: number;
  /** How long a resume waits for the node that holds the session to hand it over. */
  handoverTimeoutMs?: number;
  node?: string;
  log: Logger;
}

/*
 * Presence is a lease per node, not a TTL per name. Each node process keeps one key,
 * `<prefix>node:<holder>`, alive with PX = --presence-ttl-ms, refreshed every third of it
 * with one SET. A name key `<prefix>user:<name>` holds the holder id of its node, and a
 * user is alive while its name key exists AND that holder's lease does. Refresh work is so
 * one command per node per tick instead of one per user (at 200,000 names over 12 nodes,
 * 60,000 names a second kept Redis busy enough to delay calls by hundreds of ms).
 *
 * Name keys are still bounded so that a crashed node's names do not stay in Redis forever:
 * they carry a TTL of NAME_TTL_FACTOR x the presence TTL, refreshed in the batched REFRESH
 * every third of that (30 times rarer than before). We chose this over a set of names per
 * node that a survivor deletes: it needs no one to notice the dead node (a cluster whose
 * last node died cleans up too), adds no write per login, and stays correct when Redis
 * restarts empty. The cost: a dead node's names sit in Redis (dead, and claimable at once)
 * for up to 30 x the TTL.
 *
 * The holder id is the node id plus a random suffix per process, so a node restarted with
 * the same --node-id does not bring its predecessor's names back to life.
 *
 * The scripts below read lease keys they build from a prefix (ARGV), not from KEYS: this
 * assumes one Redis (or Valkey) holding every key, as signalbox supports, not Redis
 * Cluster, where keys undeclared in KEYS may live in another hash slot.
 */
const NAME_TTL_FACTOR = 30;
// Take a name if it is free, or if its holder's lease is gone (a dead node's name is
// taken at once). ARGV: holder, name TTL, lease key prefix.
const CLAIM = `local v = redis.call('GET', KEYS[1])
if v and redis.call('GET', ARGV[3] .. v) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;
// Release a name only if this node still holds it (after an outage another may).
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
// Keep names alive, many per call: extend each, take it back if Redis lost it or its
// holder is dead, and answer the positions (1-based) of those another live node has now.
// ARGV: holder, name TTL, lease key prefix.
const REFRESH = `local lost = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2])
  elseif v and redis.call('GET', ARGV[3] .. v) then lost[#lost + 1] = i
  else redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) end
end
return lost`;
/**
 * Names per refresh call. One call per name cost Redis ~8-10 µs each and the node a
 * promise each: at 200,000 names and the default TTL (a refresh every 3.3 s) that is more
 * than a core, and a node's claims and messages waited behind its own 17,000 queued
 * calls. A batch costs Redis ~1 µs per name and blocks it for about a millisecond; the
 * batches go one after another, so other commands get in between.
 */
const REFRESH_BATCH = 500;
/** Names per MGET when checking that remote peers are still there. */
const CHECK_BATCH = 1000;
// Hand a name to another node, if this node still holds it.
const TRANSFER = `local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or not v then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end
return 0`;
// Join a room unless it is full; answer every member (nil when full).
const JOIN = `if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  if tonumber(ARGV[3]) > 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return false end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return redis.call('HKEYS', KEYS[1])`;

/**
 * Many signalbox nodes, one namespace, on Redis (or Valkey) pub/sub. A name is a key
 * naming its node, alive while that node's lease is (see above); a user is a channel, so delivery to a
 * user on another node is one PUBLISH, and a PUBLISH nobody receives means the user is
 * gone; a room is a hash of members and a channel for its events.
 *
 * Bun's Redis client reconnects by itself but does not restore subscriptions, and
 * subscribing again on the same client delivers every message twice. So the subscriber
 * is ours to manage: when it drops, a fresh client subscribes to everything at once.
 */
export class RedisCluster implements Cluster {
  readonly node: string;
  /** This process in Redis: the value of its name keys and the id of its lease. */
  private readonly holder: string;
  private readonly nameTtl: number;
  private readonly url: string;
  private readonly prefix: string;
  private readonly ttl: number;
  private readonly log: Logger;
  private readonly cmd: RedisClient;
  private sub: RedisClient | undefined;
  private hub: Hub | undefined;
  private face: Face | undefined;
  /** Channels this node listens on: users it hosts, rooms it has members in. */
  private readonly channels = new Set<string>();
  private readonly roomMembersHere = new Map<string, number>();
  private scripts = { claim: '', release: '', refresh: '', join: '', transfer: '' };
  private readonly handoverTimeout: number;
  private seq = 0;
  /** Resumes under way here: what arrives for the name meanwhile, and who waits for the state. */
  private readonly takeovers = new Map<string, { since: Envelope[]; done: (state: Handover | null) => void }>();
  private timers: Array<ReturnType<typeof setInterval> | ReturnType<typeof setTimeout>> = [];
  /** Names of sessions that ended while Redis was away, still to be released there. */
  private readonly unreleased = new Set<string>();
  private stopped = false;
  /** The refresh under way, if any (there is never more than one), and whether another must follow it. */
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  /** A refresh pass failed part-way (Redis away): the next lease renewal starts another. */
  private refreshFailed = false;
  /** When the command connection last came back: liveness checks wait for names to be re-claimed. */
  private reconnectedAt = 0;
  private subscriberUp = false;

  constructor({ url, prefix = 'signalbox:', presenceTtlMs = 10_000, handoverTimeoutMs = 3000, node, log }: RedisClusterOptions) {
    this.handoverTimeout = handoverTimeoutMs;
    this.url = url;
    this.prefix = prefix;
    this.ttl = presenceTtlMs;
    this.log = log;
    this.node = node ?? crypto.randomUUID().slice(0, 8);
    this.holder = `${this.node}.${crypto.randomUUID().slice(0, 8)}`;
    this.nameTtl = presenceTtlMs * NAME_TTL_FACTOR;
    // Fail fast while Redis is away: the client gets `unavailable` instead of a stall.
    this.cmd = new RedisClient(url, { enableOfflineQueue: false, autoReconnect: true, maxRetries: 1_000_000 });
  }

  private userKey = (name: string) => `${this.prefix}user:${name}`;
  private userChannel = (name: string) => `${this.prefix}u:${name}`;
  private roomKey = (room: string) => `${this.prefix}room:${room}`;
  private roomChannel = (room: string) => `${this.prefix}r:${room}`;
  private nodeChannel = (holder: string) => `${this.prefix}n:${holder}`;
  private get leasePrefix() {
    return `${this.prefix}node:`;
  }
  private leaseKey = (holder: string) => `${this.leasePrefix}${holder}`;
  private get usersKey() {
    return `${this.prefix}users`;
  }
  private get presenceChannel() {
    return `${this.prefix}presence`;
  }

  /** Connect both clients and load the scripts; fails if Redis cannot be reached. */
  async connect(): Promise<void> {
    await this.cmd.connect();
    await this.loadScripts();
    await this.renewLease();
    // Handovers come to this node's own channel; presence events to everyone's.
    this.channels.add(this.nodeChannel(this.holder));
    this.channels.add(this.presenceChannel);
    this.cmd.onclose = (err) => this.log.warn('redis_down', { err: err?.message });
    this.cmd.onconnect = () => {
      this.log.info('redis_up', { node: this.node });
      this.reconnectedAt = Date.now();
      void this.recover();
    };
    await this.connectSubscriber();
  }

  /** Serve `hub`: deliver what arrives to it, keep its lease and names, watch its remote peers. */
  attach(hub: Hub, face: Face): void {
    this.hub = hub;
    this.face = face;
    // Redis away: recover() follows when it is back.
    this.every(this.ttl / 3, async () => {
      const lost = await this.renewLease();
      if (this.unreleased.size > 0) this.retryReleases();
      if (lost || this.refreshFailed) await this.refresh();
    });
    // A refresh already under way (after a reconnect) covers this tick's.
    this.every(this.nameTtl / 3, () => this.refreshing ?? this.refresh());
    this.every(this.ttl / 2, () => this.checkPeers());
  }

  /**
   * Run `fn` every `ms`, starting at a random point of the first interval, and skip a tick
   * while the last run is still going (a slow one is never overlapped; Redis away: the
   * next tick, or the recovery, tries again). Nodes started together (a deployment, a
   * restart, --workers) would otherwise do their periodic work at the same instants:
   * measured with 12 nodes sharing a core, their peer checks landed together and stalled
   * every node and Redis for a couple of hundred milliseconds.
   */
  private every(ms: number, fn: () => Promise<unknown>) {
    const interval = Math.max(100, Math.floor(ms));
    let running = false;
    const tick = () => {
      if (running || this.stopped) return;
      running = true;
      fn()
        .catch(() => {})
        .finally(() => (running = false));
    };
    this.timers.push(
      setTimeout(() => {
        tick();
        this.timers.push(setInterval(tick, interval));
      }, Math.random() * interval),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.sub?.close();
    // Redis answers in order: once this PING is answered, every publish before it is done.
    await Promise.race([this.cmd.send('PING', []).catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
    this.cmd.close();
  }

  get ready(): boolean {
    return this.cmd.connected && this.subscriberUp;
  }

  private async loadScripts() {
    const load = (src: string) => this.cmd.send('SCRIPT', ['LOAD', src]) as Promise<string>;
    this.scripts = { claim: await load(CLAIM), release: await load(RELEASE), refresh: await load(REFRESH), join: await load(JOIN), transfer: await load(TRANSFER) };
  }

  /**
   * One command, whatever the number of users. If the lease was gone (Redis restarted
   * empty, or this node was cut off or stalled for a whole TTL), other nodes may have
   * taken names of ours meanwhile: the caller then asserts every name (refresh), which
   * evicts those another live node holds now. Answers whether the lease had been lost.
   */
  private async renewLease(): Promise<boolean> {
    return (await this.cmd.send('SET', [this.leaseKey(this.holder), this.node, 'PX', String(this.ttl), 'GET'])) === null;
  }

  /** Redis came back (perhaps empty): scripts, lease, names and room memberships again. */
  private async recover() {
    try {
      await this.loadScripts();
      await this.renewLease();
      this.retryReleases();
      await this.refresh();
      for (const [room] of this.roomMembersHere) {
        const members = this.hub?.rooms.get(room)?.members ?? [];
        for (const m of members) if (this.hub?.sessions.has(m)) await this.cmd.send('HSET', [this.roomKey(room), m, this.node]);
      }
    } catch (err) {
      this.log.warn('redis_recover_failed', { err: (err as Error).message });
    }
  }

  // ── the subscriber ──────────────────────────────────────────────────────────

  private readonly onMessage = (message: string, channel: string) => {
    let env: Envelope;
    try {
      env = JSON.parse(message);
    } catch {
      return this.log.warn('redis_bad_message', { channel });
    }
    if (channel.startsWith(`${this.prefix}r:`)) {
      if (env.node !== this.node) this.hub?.receiveRoomEvent(env, this.face!);
    } else if (channel === this.presenceChannel) {
      if (env.node !== this.node) this.hub?.receivePresence(env, this.face!);
    } else if (channel === this.nodeChannel(this.holder)) {
      if (env.kind === 'handover') this.takeovers.get(env.to)?.done(env.payload as Handover | null);
    } else if (env.kind === 'resume') {
      void this.handOver(env);
    } else {
      const takeover = this.takeovers.get(env.to);
      if (takeover !== undefined) takeover.since.push(env);
      else this.hub?.receiveEnvelope(env);
    }
  };

  private async connectSubscriber(): Promise<void> {
    let delay = 50;
    while (!this.stopped) {
      const sub = new RedisClient(this.url, { autoReconnect: false, enableOfflineQueue: false });
      try {
        await sub.connect();
        // Every channel in one command, on a client that has never subscribed before.
        const channels = [...this.channels];
        if (channels.length > 0) await sub.subscribe(channels, this.onMessage);
        sub.onclose = () => {
          if (this.sub !== sub || this.stopped) return;
          this.subscriberUp = false;
          this.log.warn('redis_subscriber_down', { node: this.node });
          void this.connectSubscriber();
        };
        this.sub = sub;
        this.subscriberUp = true;
        if (channels.length > 0) this.log.info('redis_resubscribed', { channels: channels.length });
        return;
      } catch {
        sub.close();
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  private async listen(channel: string) {
    this.channels.add(channel);
    if (this.subscriberUp) await this.sub!.subscribe(channel, this.onMessage);
  }

  private unlisten(channel: string) {
    this.channels.delete(channel);
    if (this.subscriberUp) this.sub!.unsubscribe(channel, this.onMessage).catch(() => {});
  }

  // ── Cluster ─────────────────────────────────────────────────────────────────

  async claim(name: string): Promise<boolean> {
    const ok = (await this.cmd.send('EVALSHA', [this.scripts.claim, '1', this.userKey(name), this.holder, String(this.nameTtl), this.leasePrefix])) === 1;
    if (ok) {
      // Ours again: a release still owed from an outage must not take it away.
      this.unreleased.delete(name);
      this.cmd.send('ZADD', [this.usersKey, '0', name]).catch(() => {});
    }
    return ok;
  }

  release(name: string): void {
    this.cmd
      .send('EVALSHA', [this.scripts.release, '1', this.userKey(name), this.holder])
      .then((n) => n === 1 && this.cmd.send('ZREM', [this.usersKey, name]))
      .catch(() => {
        // Redis away: the key names this node, whose lease lives on, so nobody could take
        // the name and the user's partners elsewhere would never hear it is gone. Again
        // once Redis is back (unless the name is hosted here again by then).
        if (!this.hub?.sessions.has(name)) this.unreleased.add(name);
      });
  }

  /** Release again what could not be released while Redis was away. */
  private retryReleases() {
    for (const name of this.unreleased) {
      this.unreleased.delete(name);
      if (!this.hub?.sessions.has(name)) this.release(name);
    }
  }

  async host(name: string): Promise<void> {
    if (!this.subscriberUp) throw new Error('redis subscriber down');
    await this.listen(this.userChannel(name));
  }

  unhost(name: string): void {
    this.unlisten(this.userChannel(name));
  }

  send(env: Envelope): Promise<number> {
    env.id = `${this.node}:${++this.seq}`;
    return this.cmd.publish(this.userChannel(env.to), JSON.stringify(env));
  }

  // ── resume on another node ──────────────────────────────────────────────────

  /**
   * This node's client came back with a token for a session another node holds. Listen on
   * the user's channel first (keeping what arrives), then ask the holder on that same
   * channel: every message is then either in the holder's queue, or here, or both (told
   * apart by id), and none is lost or delivered twice.
   */
  async takeOver(name: string, token: string): Promise<{ state: Handover; since: Envelope[] } | null> {
    if (this.takeovers.has(name) || !this.subscriberUp) return null;
    const since: Envelope[] = [];
    let done!: (state: Handover | null) => void;
    const answered = new Promise<Handover | null>((resolve) => (done = resolve));
    this.takeovers.set(name, { since, done });
    const timer = setTimeout(() => done(null), this.handoverTimeout);
    try {
      await this.listen(this.userChannel(name));
      // `node` here is the holder id: the name goes to it, and the answer to its channel.
      await this.cmd.publish(this.userChannel(name), JSON.stringify({ kind: 'resume', from: name, to: name, payload: token, node: this.holder }));
      const state = await answered;
      if (state === null) {
        this.unlisten(this.userChannel(name));
        return null;
      }
      for (const { room } of state.rooms) await this.adoptRoom(room, name);
      return { state, since };
    } finally {
      clearTimeout(timer);
      this.takeovers.delete(name);
    }
  }

  /** Another node asks for a session hosted here. */
  private async handOver(env: Envelope) {
    const hub = this.hub;
    if (hub === undefined || env.node === this.holder || typeof env.payload !== 'string') return;
    if (!hub.sessions.has(env.to)) return; // not ours (the asker hears nothing and times out)
    const state = hub.handOver(env.to, env.payload);
    if (state !== null) {
      this.unhost(env.to);
      for (const { room } of state.rooms) this.releaseRoom(room);
      await this.cmd.send('EVALSHA', [this.scripts.transfer, '1', this.userKey(env.to), this.holder, env.node!, String(this.nameTtl)]).catch(() => {});
    }
    const reply: Envelope = { kind: 'handover', from: env.to, to: env.to, payload: state, node: this.node };
    await this.cmd.publish(this.nodeChannel(env.node!), JSON.stringify(reply)).catch(() => {});
  }

  private async adoptRoom(room: string, name: string) {
    await this.cmd.send('HSET', [this.roomKey(room), name, this.node]);
    const n = this.roomMembersHere.get(room) ?? 0;
    this.roomMembersHere.set(room, n + 1);
    if (n === 0) await this.listen(this.roomChannel(room));
  }

  /** A member here left for another node: it is still in the room, just not here. */
  private releaseRoom(room: string) {
    const n = (this.roomMembersHere.get(room) ?? 1) - 1;
    if (n > 0) return void this.roomMembersHere.set(room, n);
    this.roomMembersHere.delete(room);
    this.unlisten(this.roomChannel(room));
  }

  // ── discovery ───────────────────────────────────────────────────────────────

  async listUsers(cursor: string, limit: number): Promise<{ users: string[]; next?: string }> {
    // Names sorted by code point (a sorted set with equal scores), one page past the cursor,
    // and one more to know whether there is a next page. Names whose key is gone are
    // dropped from the set as they are met; those of a node whose lease is gone are only
    // skipped (their keys expire later, and another node may claim them meanwhile).
    const from = cursor === '' ? '-' : `(${cursor}`;
    const page = (await this.cmd.send('ZRANGE', [this.usersKey, from, '+', 'BYLEX', 'LIMIT', '0', String(limit + 1)])) as string[];
    const more = page.length > limit;
    const names = page.slice(0, limit);
    if (names.length === 0) return { users: [] };
    const held = (await this.cmd.send('MGET', names.map(this.userKey))) as Array<string | null>;
    const live = await this.liveHolders(held);
    const users = names.filter((_, i) => held[i] !== null && live.has(held[i]!));
    const gone = names.filter((_, i) => held[i] === null);
    if (gone.length > 0) this.cmd.send('ZREM', [this.usersKey, ...gone]).catch(() => {});
    return more ? { users, next: names.at(-1)! } : { users };
  }

  announce(env: Envelope): void {
    env.node = this.node;
    this.cmd.publish(this.presenceChannel, JSON.stringify(env)).catch(() => {});
  }

  async joinRoom(room: string, name: string, limit: number): Promise<string[] | null> {
    const members = (await this.cmd.send('EVALSHA', [this.scripts.join, '1', this.roomKey(room), name, this.node, String(limit)])) as string[] | null;
    if (members === null) return null;
    const n = this.roomMembersHere.get(room) ?? 0;
    this.roomMembersHere.set(room, n + 1);
    if (n === 0) await this.listen(this.roomChannel(room));
    return members;
  }

  leaveRoom(room: string, name: string): void {
    this.cmd.send('HDEL', [this.roomKey(room), name]).catch(() => {});
    const n = (this.roomMembersHere.get(room) ?? 1) - 1;
    if (n > 0) return void this.roomMembersHere.set(room, n);
    this.roomMembersHere.delete(room);
    this.unlisten(this.roomChannel(room));
  }

  roomEvent(env: Envelope): void {
    if (env.room === undefined) return;
    this.cmd.publish(this.roomChannel(env.room), JSON.stringify(env)).catch(() => {});
  }

  // ── keeping names alive, noticing dead peers ────────────────────────────────

  /** Refresh every name hosted here; if one is under way, another pass follows it (Redis came back meanwhile). */
  private refresh(): Promise<void> {
    if (this.refreshing !== undefined) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          await this.refreshAll();
        } while (this.refreshAgain && !this.stopped);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async refreshAll() {
    const hub = this.hub;
    if (hub === undefined || !this.cmd.connected) return;
    this.refreshFailed = false;
    const names = [...hub.sessions.keys()];
    const ttl = String(this.nameTtl);
    for (let at = 0; at < names.length; at += REFRESH_BATCH) {
      // Only names still hosted now: one that ended while earlier batches ran has been
      // released (DEL) already, and refreshing it would claim it again for a whole TTL.
      // A name released after this is sent is released after it, on the same connection.
      const batch = names.slice(at, at + REFRESH_BATCH).filter((n) => hub.sessions.has(n));
      if (batch.length === 0) continue;
      let lost: number[];
      try {
        lost = (await this.cmd.send('EVALSHA', [this.scripts.refresh, String(batch.length), ...batch.map(this.userKey), this.holder, ttl, this.leasePrefix])) as number[];
      } catch {
        // Redis away: the recovery, or the next lease renewal, tries again.
        this.refreshFailed = true;
        return;
      }
      // Another node took the name while Redis forgot ours: the name is theirs now.
      for (const i of lost) hub.evict(batch[i - 1]!, 'name claimed on another node');
    }
  }

  /** Of the holders named in `held`, those whose lease is alive (one MGET for the distinct ones). */
  private async liveHolders(held: Array<string | null>): Promise<Set<string>> {
    const holders = [...new Set(held.filter((h): h is string => h !== null))];
    if (holders.length === 0) return new Set();
    const leases = (await this.cmd.send('MGET', holders.map(this.leaseKey))) as Array<string | null>;
    return new Set(holders.filter((_, i) => leases[i] !== null));
  }

  /**
   * Users on other nodes linked to users here: gone if their name is gone or its node's
   * lease is. A name now held by another live node is not gone (the user resumed there).
   */
  private async checkPeers() {
    const hub = this.hub;
    if (hub === undefined || !this.cmd.connected) return;
    // Right after Redis came back, names are still being re-claimed: do not mistake that for death.
    if (Date.now() - this.reconnectedAt < this.ttl) return;
    const remote = [...hub.remotePeers()];
    if (remote.length === 0) return;
    try {
      // In slices: one MGET of every remote peer (16,000 at 200,000 users over 12 nodes)
      // holds Redis, and this node, for milliseconds at a time.
      const held: Array<string | null> = [];
      for (let at = 0; at < remote.length; at += CHECK_BATCH) {
        held.push(...((await this.cmd.send('MGET', remote.slice(at, at + CHECK_BATCH).map(this.userKey))) as Array<string | null>));
      }
      const live = await this.liveHolders(held);
      const gone = new Set(remote.filter((_, i) => held[i] === null || !live.has(held[i]!)));
      if (gone.size === 0) return;
      this.log.info('peer_gone', { users: gone.size, first: gone.values().next().value });
      // Their room memberships here, dropped from Redis too (other nodes may do the same: harmless).
      for (const room of this.roomMembersHere.keys()) {
        const dead = [...(hub.rooms.get(room)?.members ?? [])].filter((m) => gone.has(m));
        if (dead.length > 0) this.cmd.send('HDEL', [this.roomKey(room), ...dead]).catch(() => {});
      }
      hub.forgetRemote(gone);
    } catch {
      // Redis away: try again next tick.
    }
  }
}
