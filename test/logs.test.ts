import { describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sign } from 'hono/jwt';
import deno from '../deno.json' with { type: 'json' };
import { createBunServer } from '../src/adapter/bun.ts';
import { parseCli } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { tableNames } from './doc-tables.ts';
import { Client, denoBin, eventually, loggedIn, spawnServer } from './helpers.ts';

/**
 * What an operator reads: one line per connect, login and close (never one per relayed
 * message), JSON lines that parse, and no SDP, ICE candidate or token in any of them, at
 * any level.
 */

const root = join(import.meta.dir, '..');

// Distinctive text in every payload, so any of it reaching a log line is found.
const SECRET_SDP = 'v=0\r\no=- 4611731400430051336 2 IN IP4 192.0.2.77\r\ns=SECRET-SDP-MARKER\r\na=fingerprint:sha-256 AB:CD\r\n';
const SECRET_CANDIDATE = (i: number) => ({ candidate: `candidate:842163049 1 udp 1677729535 192.0.2.99 ${40000 + i} typ srflx SECRET-CAND-MARKER`, sdpMid: '0', sdpMLineIndex: 0 });
const FORBIDDEN = ['SECRET', '192.0.2.', 'candidate:', 'v=0', 'sdp', 'fingerprint'];

/** A whole call, a refusal and a hang-up: everything whose payload must stay out of the logs. */
async function call(url: string, names: [string, string, string]) {
  const [a, b, c] = (await loggedIn(url, ...names)) as [Client, Client, Client];
  a.send({ type: 'offer', name: names[1], offer: { type: 'offer', sdp: SECRET_SDP } });
  await b.nextOfType('offer');
  b.send({ type: 'answer', name: names[0], answer: { type: 'answer', sdp: SECRET_SDP } });
  await a.nextOfType('answer');
  for (let i = 0; i < 50; i++) a.send({ type: 'candidate', name: names[1], candidate: SECRET_CANDIDATE(i) });
  for (let i = 0; i < 50; i++) b.send({ type: 'candidate', name: names[0], candidate: SECRET_CANDIDATE(i) });
  await b.waitFor(50);
  await a.waitFor(50);
  // Refused (logged at debug): an offer to a busy user, and to nobody.
  c.send({ type: 'offer', name: names[1], offer: { type: 'offer', sdp: SECRET_SDP } });
  expect(await c.nextOfType('error')).toMatchObject({ code: 'busy' });
  c.send({ type: 'offer', name: 'nobody', offer: { type: 'offer', sdp: SECRET_SDP } });
  expect(await c.nextOfType('error')).toMatchObject({ code: 'user_not_found' });
  // A message that fails validation is refused with the field named, not logged.
  c.send({ type: 'candidate', name: ['SECRET-BAD-NAME'], candidate: SECRET_CANDIDATE(0) });
  expect(await c.nextOfType('error')).toMatchObject({ code: 'invalid_message' });
  a.send({ type: 'leave', name: names[1] });
  await b.nextOfType('leave');
  await Promise.all([a.close(), b.close(), c.close()]);
}

function expectClean(lines: string[]) {
  for (const line of lines) for (const word of FORBIDDEN) if (line.includes(word)) throw new Error(`log line contains "${word}": ${line}`);
}

/** The events of a call: one line per connect, login, leave and close, and nothing per message. */
function expectEvents(events: Array<{ event: string; [k: string]: unknown }>, names: string[]) {
  const of = (e: string) => events.filter((x) => x.event === e);
  expect(of('connect')).toHaveLength(3);
  expect(of('login').map((x) => x.user).sort()).toEqual([...names].sort());
  expect(of('close').map((x) => x.user).sort()).toEqual([...names].sort());
  for (const e of [...of('connect'), ...of('login'), ...of('close')]) expect(e.conn).toEqual(expect.any(Number));
  expect(of('leave').map((x) => [x.user, x.to])).toEqual([[names[0], names[1]]]);
  // The refusals, at debug, without their payload.
  expect(of('refused').map((x) => x.code).sort()).toEqual(['busy', 'invalid_message', 'user_not_found']);
  const allowed = new Set(['unsupported', 'listening', 'connect', 'login', 'leave', 'close', 'refused', 'shutdown']);
  expect(events.filter((x) => !allowed.has(x.event))).toEqual([]);
}

describe('log lines', () => {
  test('json: fixed keys first, fields after, undefined left out, errors as text', () => {
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l), 'json');
    log.info('close', { conn: 7, user: undefined, code: 1006 });
    log.error('handler_failed', { conn: 1, err: new Error('boom') });
    log.debug('odd', { text: 'a "quoted"\nline', list: [1, 2], level: 'shadow' });
    const [close, failed, odd] = lines.map((l) => JSON.parse(l));
    expect(Object.keys(close)).toEqual(['time', 'level', 'event', 'conn', 'code']);
    expect(close).toMatchObject({ level: 'info', event: 'close', conn: 7, code: 1006 });
    expect(new Date(close.time).toISOString()).toBe(close.time);
    expect(failed.err).toContain('boom');
    expect(odd).toMatchObject({ level: 'debug', text: 'a "quoted"\nline', list: [1, 2] });
    for (const l of lines) expect(l).not.toContain('\n');
  });

  test('pretty: undefined fields left out, and levels below the threshold print nothing', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l), 'pretty');
    log.debug('hidden');
    log.info('close', { conn: 7, user: undefined, code: 1006 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\S+ info close conn=7 code=1006$/);
  });
});

/** The real entries, each with --log-format json at debug: every line of stdout is a JSON object. */
const entries: Array<[string, string[] | null]> = [
  ['bun', [process.execPath, join(root, 'src/main.ts')]],
  ['deno', existsSync(denoBin) ? [denoBin, ...deno.tasks.start.split(' ').slice(1).map((a) => (a.endsWith('.ts') ? join(root, a) : a))] : null],
];

describe('--log-format json, from the real entry', () => {
  for (const [runtime, command] of entries) {
    test.skipIf(command === null && !process.env.CI)(`${runtime}: a call at debug level logs parseable lines, no SDP or candidates`, async () => {
      if (command === null) throw new Error(`${runtime} is required under CI (make installs it)`);
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNALBOX_')));
      const server = await spawnServer([...command, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--log-level', 'debug'], {
        env: { ...env, NO_COLOR: '1' },
      });
      const names: [string, string, string] = ['alice', 'bob', 'carol'];
      await call(`ws://127.0.0.1:${server.port}/`, names);
      await eventually(() => server.lines.filter((l) => l.includes('"event":"close"')).length === 3, 3000, 'three close lines');
      await server.stop();
      await eventually(() => server.lines.some((l) => l.includes('"event":"shutdown"')), 3000, 'the shutdown line');
      const events = server.lines.map((line) => {
        const parsed = JSON.parse(line);
        // (Checked field by field: Bun's toMatchObject writes its matchers into the object.)
        expect(new Date(parsed.time).toISOString()).toBe(parsed.time);
        expect(['debug', 'info', 'warn', 'error']).toContain(parsed.level);
        expect(parsed.event).toEqual(expect.any(String));
        return parsed;
      });
      expectClean(server.lines);
      expectEvents(events, names);
    }, 60_000);
  }
  if (entries.some(([, c]) => c === null) && !process.env.CI) console.warn(`SKIPPED: the Deno entry's JSON logs (no Deno at ${denoBin}; make test installs it)`);
});

/** A server in this process whose log lines (pretty, debug) land in `lines`. */
async function inProcess(overrides: Record<string, unknown> = {}) {
  const cli = parseCli([]);
  if (cli.kind !== 'run') throw new Error('unreachable');
  const lines: string[] = [];
  const log = createLogger('debug', (l) => lines.push(l), 'pretty');
  const app = await createBunServer({ config: { ...cli.config, host: '127.0.0.1', port: 0, ...overrides }, log, version: 'test' });
  return { app, lines, url: `ws://127.0.0.1:${app.server.port}/` };
}

describe('--log-format pretty', () => {
  test('a call at debug level: one line per connect, login and close; no SDP or candidates', async () => {
    const { app, lines, url } = await inProcess();
    try {
      const names: [string, string, string] = ['alice', 'bob', 'carol'];
      await call(url, names);
      await eventually(() => lines.filter((l) => / info close /.test(l)).length === 3, 3000, 'three close lines');
      expectClean(lines);
      const events = lines.map((l) => {
        const [, level, event, rest] = /^\S+ (\w+) (\w+)(.*)$/.exec(l)!;
        const fields = Object.fromEntries([...rest!.matchAll(/ (\w+)=(\S+)/g)].map(([, k, v]) => [k, /^\d+$/.test(v!) ? Number(v) : v]));
        return { level, event: event!, ...fields };
      });
      expectEvents(events, names);
    } finally {
      await app.stop();
    }
  });

  test('a refused token is logged by its error name, never its text', async () => {
    const secret = 'logs-test-secret-0123456789abcdefgh';
    const { app, lines, url } = await inProcess({ authSecret: secret });
    try {
      // A token with a valid signature that is not valid yet (a credential for later), and a
      // forged one: both refused, neither may reach the log (hono's messages quote the token).
      const early = await sign({ sub: 'x', nbf: Math.floor(Date.now() / 1000) + 3600 }, secret, 'HS256');
      const forged = await sign({ sub: 'x', exp: Math.floor(Date.now() / 1000) + 60 }, `${secret}!`, 'HS256');
      for (const token of [early, forged]) await expect(Client.connect(`${url}?token=${token}`)).rejects.toThrow();
      await expect(Client.connect(url)).rejects.toThrow();
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(/ info upgrade_refused reason=token err=JwtTokenNotBefore$/);
      expect(lines[1]).toMatch(/ info upgrade_refused reason=token err=JwtTokenSignatureMismatched$/);
      expect(lines[2]).toMatch(/ info upgrade_refused reason=token err="no token"$/);
      for (const token of [early, forged]) for (const part of token.split('.')) for (const l of lines) expect(l).not.toContain(part);
    } finally {
      await app.stop();
    }
  });
});

test('docs/deploy.md lists every event the source logs, and no other', () => {
  const files = readdirSync(join(root, 'src'), { recursive: true }).filter((f): f is string => typeof f === 'string' && f.endsWith('.ts'));
  const logged = new Set<string>();
  for (const f of files) {
    for (const [, event] of readFileSync(join(root, 'src', f), 'utf8').matchAll(/\blog\.(?:debug|info|warn|error)\('([a-z_]+)'/g)) logged.add(event!);
  }
  expect(logged.size).toBeGreaterThan(20);
  const documented = tableNames(readFileSync(join(root, 'docs/deploy.md'), 'utf8'), '<!-- log-events');
  expect([...new Set(documented)].sort()).toEqual([...logged].sort());
});
