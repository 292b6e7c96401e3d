import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHmac } from 'node:crypto';
import { createIceServers, turnCredential } from '../src/signaling/ice.ts';
import { Client, loggedIn, startServer, type TestServer } from './helpers.ts';

describe('discovery (off by default)', () => {
  test('without --discovery: list is refused and GET /users is 404', async () => {
    const srv = await startServer();
    const [a] = (await loggedIn(srv.url, 'a')) as [Client];
    a.send({ type: 'list' });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'discovery_disabled' });
    expect((await fetch(`${srv.http}/users`)).status).toBe(404);
    a.close();
    await srv.stop();
  });

  describe('with --discovery', () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startServer({ discovery: true, maxConnectionsPerIp: 0 });
    });
    afterAll(() => srv.stop());

    test('list pages through every logged-in user, in order', async () => {
      const names = Array.from({ length: 130 }, (_, i) => `user-${String(i).padStart(3, '0')}`);
      const clients = await loggedIn(srv.url, ...names);
      const me = clients[0]!;
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        me.send({ type: 'list', limit: 50, ...(cursor === undefined ? {} : { cursor }) });
        const r = await me.nextOfType('users');
        expect(r.users.length).toBeLessThanOrEqual(50);
        seen.push(...r.users);
        cursor = r.next;
        if (cursor === undefined) break;
      }
      expect(seen).toEqual(names);
      // GET /users mirrors it, bounded to 100 a page.
      const http = (await (await fetch(`${srv.http}/users?limit=500`)).json()) as { users: string[]; next?: string };
      expect(http.users.length).toBe(100);
      expect(http.next).toBe(names[99]);
      const rest = (await (await fetch(`${srv.http}/users?cursor=${http.next}`)).json()) as { users: string[] };
      expect([...http.users, ...rest.users]).toEqual(names);
      me.send({ type: 'list', limit: 0 });
      expect(await me.next()).toMatchObject({ code: 'invalid_message', field: 'limit' });
      for (const c of clients) c.close();
    });

    test('watchers get presence events; others do not', async () => {
      const [w, q] = (await loggedIn(srv.url, 'watcher', 'quiet')) as [Client, Client];
      w.send({ type: 'list', watch: true });
      await w.nextOfType('users');
      const [x] = (await loggedIn(srv.url, 'newcomer')) as [Client];
      expect(await w.next()).toEqual({ type: 'presence', name: 'newcomer', online: true });
      await x.close();
      expect(await w.next()).toEqual({ type: 'presence', name: 'newcomer', online: false });
      await q.quiet(50);
      w.close();
      q.close();
    });
  });
});

describe('ICE servers', () => {
  test('TURN REST credentials match a known vector (HMAC-SHA1, base64)', () => {
    // Computed independently: printf '1600000000:alice' | openssl dgst -sha1 -hmac north -binary | base64
    expect(turnCredential(createHmac, 'north', 1600000000, 'alice')).toEqual({ username: '1600000000:alice', credential: 'gq98pTOhhHaAu0we9aV79kOVVv0=' });
    expect(turnCredential(createHmac, 'north', 1600000000)).toEqual({ username: '1600000000', credential: 'EcH4dsyQy56EX56OdPiaakwSloo=' });
  });

  test('none configured: no iceServers in the login reply, [] over HTTP', async () => {
    const srv = await startServer();
    const [a] = (await loggedIn(srv.url, 'a')) as [Client];
    expect(a.log[0]!.iceServers).toBeUndefined();
    expect(await (await fetch(`${srv.http}/ice-servers`)).json()).toEqual({ iceServers: [] });
    a.close();
    await srv.stop();
  });

  test('STUN and TURN: the login reply and GET /ice-servers carry ready iceServers', async () => {
    const srv = await startServer({
      stun: ['stun:stun.example.org:3478'],
      turnUrl: ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349'],
      turnSecret: 'north',
      turnTtl: 3600,
    });
    const before = Math.floor(Date.now() / 1000);
    const [a] = (await loggedIn(srv.url, 'alice')) as [Client];
    const [stun, turn] = a.log[0]!.iceServers;
    expect(stun).toEqual({ urls: ['stun:stun.example.org:3478'] });
    expect(turn.urls).toEqual(['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349']);
    const [expiry, name] = turn.username.split(':');
    expect(name).toBe('alice');
    expect(Number(expiry)).toBeGreaterThanOrEqual(before + 3600);
    expect(Number(expiry)).toBeLessThanOrEqual(before + 3602);
    expect(turn.credential).toBe(turnCredential(createHmac, 'north', Number(expiry), 'alice').credential);
    const http = (await (await fetch(`${srv.http}/ice-servers`)).json()) as { iceServers: Array<Record<string, any>> };
    expect(http.iceServers[1]!.username).toMatch(/^\d+$/);
    a.close();
    await srv.stop();
  });

  test('repeatable --stun and --turn-url flags', async () => {
    const { parseCli } = await import('../src/config.ts');
    const cli = parseCli(['--stun', 'stun:a', '--stun', 'stun:b,stun:c', '--turn-url', 'turn:t']);
    if (cli.kind !== 'run') throw new Error('unreachable');
    expect(cli.config.stun).toEqual(['stun:a', 'stun:b', 'stun:c']);
    const make = createIceServers({ ...cli.config, turnUrls: cli.config.turnUrl });
    expect(make!()).toEqual([{ urls: ['stun:a', 'stun:b', 'stun:c'] }, { urls: ['turn:t'] }]);
  });
});

const haveCoturn = Bun.which('turnserver') !== null && Bun.which('turnutils_uclient') !== null;
if (!haveCoturn) {
  if (process.env.CI) throw new Error('coturn is required under CI (.ci/run installs it)');
  console.warn('SKIPPED: the coturn check needs Debian package coturn (turnserver, turnutils_uclient)');
}

describe('ICE servers against a real coturn', () => {
  test.skipIf(!haveCoturn)('the credentials in a login reply allocate a relay on coturn; a forged one does not', async () => {
    const port = 30_000 + Math.floor(Math.random() * 20_000);
    const turn = Bun.spawn(
      ['turnserver', '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
        '--use-auth-secret', '--static-auth-secret=coturn-shared-secret', '--realm=signalbox', '--no-tls', '--no-dtls',
        '--no-cli', '--allow-loopback-peers', '--log-file=stdout', '--simple-log'],
      { stdout: 'pipe', stderr: 'pipe' },
    );
    const srv = await startServer({ turnUrl: [`turn:127.0.0.1:${port}`], turnSecret: 'coturn-shared-secret', turnTtl: 600 });
    try {
      await Bun.sleep(500); // coturn opens its listener
      const [a] = (await loggedIn(srv.url, 'alice')) as [Client];
      const { username, credential } = a.log[0]!.iceServers[0];
      // Two allocations relay packets to each other through coturn (-y), no RTCP (-c).
      const relay = async (password: string) => {
        const p = Bun.spawn(['turnutils_uclient', '-y', '-c', '-n', '3', '-m', '1', '-p', String(port), '-u', username, '-w', password, '-e', '127.0.0.1', '127.0.0.1'], {
          stdout: 'pipe',
          stderr: 'pipe',
        });
        const out = (await new Response(p.stdout).text()) + (await new Response(p.stderr).text());
        return { code: await p.exited, out };
      };
      const good = await relay(credential);
      expect(good.code).toBe(0);
      expect(good.out).toContain('Total lost packets 0 (0.000000%)');
      // One character changed (never to itself: a credential starting with 'x' once made this test pass a forgery).
      const forged = await relay(`${credential[0] === 'x' ? 'y' : 'x'}${credential.slice(1)}`);
      expect(forged.code).not.toBe(0);
      expect(forged.out).toContain('Cannot complete Allocation');
      a.close();
    } finally {
      turn.kill();
      await srv.stop();
    }
  }, 30_000);
});
