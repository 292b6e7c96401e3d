import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { EARLY_CANDIDATES_MAX, EARLY_SENDERS_MAX } from '../src/protocol/limits.ts';
import { userTopic } from '../src/signaling/session.ts';
import { Client, eventually, inProcess, type Json, skipNotice, startServer, type TestServer } from './helpers.ts';

/**
 * Several real clients send random sequences of valid and invalid messages to a real
 * server. A model of the routing rules predicts every frame each client must receive;
 * the test checks that exactly those arrive (nothing lost, nothing extra, nothing to the
 * wrong user), that the server never fails, and that nothing is left behind at the end.
 */

const CLIENTS = 4;
const NAMES = ['alice', 'bob', '__proto__', 'constructor'];
const PROBE = { type: 'sync-probe' };

type Action =
  | { op: 'login'; c: number; name: string }
  | { op: 'offer' | 'answer' | 'candidate'; c: number; to: string }
  | { op: 'leave'; c: number; to: string | undefined }
  | { op: 'garbage'; c: number; frame: string | Uint8Array; code: string }
  | { op: 'close'; c: number }
  | { op: 'reconnect'; c: number };

const client = fc.integer({ min: 0, max: CLIENTS - 1 });
const target = fc.constantFrom(...NAMES, 'nobody');
const garbage = fc.oneof(
  fc.constant({ frame: '{"type":', code: 'invalid_json' }),
  fc.constant({ frame: 'not json at all', code: 'invalid_json' }),
  fc.constant({ frame: new Uint8Array([1, 2, 3]), code: 'binary_frame' }),
  fc.constant({ frame: '[]', code: 'invalid_message' }),
  fc.constant({ frame: '42', code: 'invalid_message' }),
  fc.constant({ frame: '{"type":"dance"}', code: 'unknown_type' }),
  fc.constant({ frame: '{"type":"__proto__"}', code: 'unknown_type' }),
  fc.constant({ frame: '{"type":"offer","name":7,"offer":"x"}', code: 'invalid_message' }),
  fc.constant({ frame: '{"type":"candidate","name":"bob"}', code: 'invalid_message' }),
  fc.constant({ frame: '{"type":"answer","name":"bob","answer":[1]}', code: 'invalid_message' }),
  fc.string({ maxLength: 20 }).map((s) => ({ frame: JSON.stringify({ type: `x-${s}` }), code: 'unknown_type' })),
);
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('login' as const), c: client, name: fc.oneof(fc.constantFrom(...NAMES), fc.constant(''), fc.constant('bad\u0001name')) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constantFrom('offer' as const, 'answer' as const, 'candidate' as const), c: client, to: target }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('candidate' as const), c: client, to: target }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('leave' as const), c: client, to: fc.option(target, { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.tuple(client, garbage).map(([c, g]) => ({ op: 'garbage' as const, c, ...g })) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), c: client }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reconnect' as const), c: client }) },
);

interface ModelClient {
  open: boolean;
  name: string | null;
}

/** What the server should do, derived from the rules in docs/protocol.md. */
class Model {
  clients: ModelClient[] = Array.from({ length: CLIENTS }, () => ({ open: true, name: null }));
  partner = new Map<string, string>();
  /** Candidates held by a callee, by sender. */
  early = new Map<string, Map<string, string[]>>();
  /** Frames each client must receive next, in order. */
  expected: Json[][] = Array.from({ length: CLIENTS }, () => []);

  byName(name: string) {
    return this.clients.findIndex((c) => c.open && c.name === name);
  }
  private err(c: number, code: string, extra: Json = {}) {
    this.expected[c]!.push({ type: 'error', code, ...extra });
  }
  private to(name: string, frame: Json) {
    this.expected[this.byName(name)]!.push(frame);
  }
  /** Drop what `from` sent `target` early; with `report`, one error each to the sender. */
  private dropEarly(target: string, from: string, report: boolean) {
    const held = this.early.get(target)?.get(from);
    if (!held) return;
    this.early.get(target)!.delete(from);
    const c = this.byName(from);
    if (report && c !== -1) for (const _ of held) this.err(c, 'not_in_call', { name: target, request: 'candidate' });
  }
  private endCall(from: string, to: string) {
    this.partner.delete(from);
    if (this.partner.get(to) === from) this.partner.delete(to);
    if (this.byName(to) !== -1) this.to(to, { type: 'leave', name: from });
  }

  apply(a: Action, payload: string) {
    const me = this.clients[a.c]!;
    if (a.op === 'reconnect') {
      if (!me.open) this.clients[a.c] = { open: true, name: null };
      return;
    }
    if (!me.open) return; // actions on a closed client are skipped by the runner
    if (a.op === 'close') {
      if (me.name !== null) {
        const name = me.name;
        // What others sent it early is refused; what it sent others early is dropped.
        for (const from of [...(this.early.get(name)?.keys() ?? [])]) this.dropEarly(name, from, true);
        this.early.delete(name);
        for (const held of this.early.values()) held.delete(name);
        me.open = false;
        const p = this.partner.get(name);
        if (p !== undefined) this.endCall(name, p);
      }
      me.open = false;
      return;
    }
    if (a.op === 'garbage') return this.err(a.c, a.code);
    if (a.op === 'login') {
      if (a.name === '' || a.name.includes('\u0001')) {
        this.expected[a.c]!.push({ type: 'login', success: false, reason: 'invalid_name' });
      } else if (me.name !== null) this.err(a.c, 'already_logged_in');
      else if (this.byName(a.name) !== -1) this.expected[a.c]!.push({ type: 'login', success: false, reason: 'name_taken' });
      else {
        me.name = a.name;
        this.expected[a.c]!.push({ type: 'login', success: true, name: a.name });
      }
      return;
    }
    const from = me.name;
    if (from === null) return this.err(a.c, 'not_logged_in');
    const partner = this.partner.get(from);
    const ref = { name: a.to, request: a.op };
    if (a.op === 'leave') {
      const to = a.to ?? partner;
      if (to === undefined || partner !== to) return this.err(a.c, to === from ? 'self_target' : 'not_in_call', { request: 'leave' });
      return this.endCall(from, to);
    }
    const to = a.to;
    const field = a.op;
    if (partner === to) return this.to(to, { type: a.op, [field]: payload, name: from });
    if (to === from) return this.err(a.c, 'self_target', ref);
    if (a.op === 'answer') return this.err(a.c, 'not_in_call', ref);
    if (a.op === 'candidate') {
      if (partner !== undefined) return this.err(a.c, 'not_in_call', ref);
      if (this.byName(to) === -1) return this.err(a.c, 'user_not_found', ref);
      if (this.partner.has(to)) return this.err(a.c, 'not_in_call', ref);
      const held = this.early.get(to) ?? new Map<string, string[]>();
      this.early.set(to, held);
      const mine = held.get(from);
      if (mine === undefined && held.size >= EARLY_SENDERS_MAX) return this.err(a.c, 'not_in_call', ref);
      if (mine !== undefined && mine.length >= EARLY_CANDIDATES_MAX) return this.err(a.c, 'not_in_call', ref);
      held.set(from, [...(mine ?? []), payload]);
      return;
    }
    // offer
    if (partner !== undefined) return this.err(a.c, 'already_in_call', ref);
    if (this.byName(to) === -1) return this.err(a.c, 'user_not_found', ref);
    const theirs = this.partner.get(to);
    if (theirs !== undefined && theirs !== from) {
      this.dropEarly(to, from, true);
      return this.err(a.c, 'busy', ref);
    }
    this.partner.set(from, to);
    this.partner.set(to, from);
    this.to(to, { type: 'offer', offer: payload, name: from });
    const held = this.early.get(to)?.get(from);
    if (held) {
      this.early.get(to)!.delete(from);
      for (const p of held) this.to(to, { type: 'candidate', candidate: p, name: from });
    }
  }
}

async function runScenario(actions: Action[]) {
  const srv: TestServer = await startServer({ rate: 0, maxConnectionsPerIp: 0, loginTimeoutMs: 0 });
  const model = new Model();
  const clients: Client[] = [];
  try {
    for (let i = 0; i < CLIENTS; i++) clients.push(await Client.connect(srv.url));
    let step = 0;
    for (const a of actions) {
      step++;
      const payload = `p${step}`;
      const c = clients[a.c]!;
      const open = model.clients[a.c]!.open;
      if (a.op === 'reconnect') {
        if (!open) clients[a.c] = await Client.connect(srv.url);
      } else if (open) {
        if (a.op === 'close') {
          const name = model.clients[a.c]!.name;
          await c.close();
          if (name !== null) await eventually(() => !srv.hub!.sessions.has(name), 2000, `${name} released`);
        } else if (a.op === 'garbage') c.ws.send(a.frame);
        else if (a.op === 'login') c.send({ type: 'login', name: a.name });
        else if (a.op === 'leave') c.send(a.to === undefined ? { type: 'leave' } : { type: 'leave', name: a.to });
        else c.send({ type: a.op, name: a.to, [a.op]: payload });
      }
      model.apply(a, payload);
      // Barrier: a probe from every open client; its reply ends that client's output.
      for (let i = 0; i < CLIENTS; i++) {
        if (!model.clients[i]!.open) continue;
        clients[i]!.send(PROBE);
        const got: Json[] = [];
        for (;;) {
          const m = await clients[i]!.next(undefined, 3000);
          if (m.type === 'error' && m.code === 'unknown_type' && m.message === 'Command not found: sync-probe') break;
          got.push(m);
        }
        const want = model.expected[i]!.splice(0);
        expect({ step, client: i, got: got.length }).toEqual({ step, client: i, got: want.length });
        want.forEach((w, k) => expect({ step, client: i, frame: got[k] }).toMatchObject({ step, client: i, frame: w }));
      }
    }
  } finally {
    await Promise.all(clients.map((c) => (c.ws.readyState === WebSocket.OPEN ? c.close() : undefined)));
    // Nothing is left behind: no session, name, call, hold, reservation or topic.
    await eventually(() => srv.hub!.census().connections === 0, 2000, 'all connections closed');
    expect(srv.hub!.census()).toEqual({ connections: 0, anonymous: 0, sessions: 0, resumable: 0, calls: 0, rooms: 0, holding: 0, outbox: 0, claiming: 0, addresses: 0, reserved: 0 });
    for (const name of NAMES) expect(srv.subscribers!(userTopic(name))).toBe(0);
    expect(srv.hub!.stats.errors.internal).toBe(0);
    await srv.stop();
  }
}

skipNotice('the routing-model property test reads the hub and its topics after each run');
describe('property: random sessions against the routing model', () => {
  test.skipIf(!inProcess)(
    'every frame gets exactly its predicted outcome; nothing leaks',
    async () => {
      await fc.assert(fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 40 }), runScenario), {
        numRuns: Number(process.env.PROPERTY_RUNS ?? 60),
        interruptAfterTimeLimit: 60_000,
      });
    },
    120_000,
  );
});
