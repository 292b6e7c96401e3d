import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkg from '../package.json' with { type: 'json' };
import { createBunServer } from '../src/adapter/bun.ts';
import { RedisCluster } from '../src/cluster/redis.ts';
import { type Config, envOf, OPTIONS, parseCli } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { Client, eventually, spawnServer } from './helpers.ts';
import { freePort, requireRedis } from './redis.ts';

/**
 * The files in deploy/ are run, not just shipped: nginx serves the reverse-proxy examples
 * in front of real servers (one node, then three on a Redis configured by
 * deploy/redis.conf), systemd-analyze checks the unit, strace checks its system call
 * filter against what the server really calls, and the container file is read for what
 * can be checked without a container engine (none runs here). Each example is rewritten
 * only where a test must (ports, addresses, certificate paths), each rewrite matching
 * exactly once, so an edit to the example that the test did not expect fails here.
 */

const root = join(import.meta.dir, '..');
const deploy = (name: string) => readFileSync(join(root, 'deploy', name), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'signalbox-deploy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Skip loudly on a laptop without `tool`; fail under CI, where .ci/run installs it. */
function need(tool: string, present: boolean, pkgName: string): boolean {
  if (present) return true;
  if (process.env.CI) throw new Error(`${tool} is required under CI (.ci/run installs ${pkgName})`);
  console.warn(`SKIPPED: deploy tests that need ${tool} (Debian package ${pkgName})`);
  return false;
}
const nginxBin = ['/usr/sbin/nginx', Bun.which('nginx')].find((p): p is string => typeof p === 'string' && existsSync(p));
const haveNginx = need('nginx', nginxBin !== undefined, 'nginx') && need('openssl', Bun.which('openssl') !== null, 'openssl');

/** Replace each `from` in `text` by its `to`; every `from` must occur exactly once. */
function rewrite(text: string, pairs: Array<[string, string]>): string {
  for (const [from, to] of pairs) {
    const n = text.split(from).length - 1;
    if (n !== 1) throw new Error(`expected "${from}" once in the example, found it ${n} times`);
    text = text.replace(from, to);
  }
  return text;
}

const defaults = (() => {
  const cli = parseCli([]);
  if (cli.kind !== 'run') throw new Error('unreachable');
  return cli.config;
})();

// ── nginx ─────────────────────────────────────────────────────────────────────

let cert = '';
let key = '';
const insecure = { rejectUnauthorized: false };

beforeAll(() => {
  if (!haveNginx) return;
  cert = join(dir, 'cert.pem');
  key = join(dir, 'key.pem');
  const made = Bun.spawnSync(
    ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert],
    { stderr: 'pipe' },
  );
  if (made.exitCode !== 0) throw new Error(`openssl: ${made.stderr.toString()}`);
});

interface Nginx {
  https: string;
  http: string;
  wss: string;
  stop(): Promise<void>;
}

/** nginx in the foreground with `site` (an example, rewritten) as its only server config. */
async function startNginx(name: string, site: (ports: { http: number; https: number }) => string): Promise<Nginx> {
  const [http, https] = [await freePort(), await freePort()];
  const prefix = mkdtempSync(join(dir, `${name}-`));
  writeFileSync(join(prefix, 'site.conf'), site({ http, https }));
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(prefix, t)};`).join(' ');
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `daemon off; worker_processes 1; pid ${join(prefix, 'nginx.pid')}; error_log ${join(prefix, 'error.log')} warn;
     events { worker_connections 256; }
     http { access_log off; ${temp} include ${join(prefix, 'site.conf')}; }\n`,
  );
  const conf = join(prefix, 'nginx.conf');
  const check = Bun.spawnSync([nginxBin!, '-t', '-q', '-p', prefix, '-e', join(prefix, 'error.log'), '-c', conf], { stderr: 'pipe' });
  if (check.exitCode !== 0) throw new Error(`nginx -t: ${check.stderr.toString()}`);
  const proc = Bun.spawn([nginxBin!, '-p', prefix, '-e', join(prefix, 'error.log'), '-c', conf], { stdout: 'ignore', stderr: 'pipe' });
  const base = `127.0.0.1:${https}`;
  const deadline = Date.now() + 5000;
  for (;;) {
    const up = await fetch(`https://${base}/healthz`, { tls: insecure } as RequestInit).then(() => true, () => false);
    if (up) break;
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`nginx did not start: ${await new Response(proc.stderr).text()}`);
    await Bun.sleep(25);
  }
  return {
    https: `https://${base}`,
    http: `http://127.0.0.1:${http}`,
    wss: `wss://${base}/`,
    async stop() {
      proc.kill('SIGTERM');
      await proc.exited;
    },
  };
}

const get = (url: string, init: Record<string, unknown> = {}) => fetch(url, { tls: insecure, redirect: 'manual', ...init } as RequestInit);
const wssClient = async (url: string, headers?: Record<string, string>) => {
  const c = new Client(url, undefined, headers, insecure);
  await c.opened;
  return c;
};

/** A call through whatever `url` leads to: offer, answer, a candidate, leave. */
async function call(url: string, an: string, bn: string) {
  const a = await wssClient(url);
  const b = await wssClient(url);
  await a.login(an);
  await b.login(bn);
  a.send({ type: 'offer', name: bn, offer: { type: 'offer', sdp: 'v=0' } });
  expect(await b.next()).toEqual({ type: 'offer', offer: { type: 'offer', sdp: 'v=0' }, name: an });
  b.send({ type: 'answer', name: an, answer: { type: 'answer', sdp: 'v=0' } });
  expect(await a.next()).toEqual({ type: 'answer', answer: { type: 'answer', sdp: 'v=0' }, name: bn });
  const candidate = { candidate: 'candidate:1 1 udp 2122260223 10.0.0.1 9000 typ host', sdpMid: '0', sdpMLineIndex: 0 };
  b.send({ type: 'candidate', name: an, candidate });
  expect(await a.next()).toEqual({ type: 'candidate', candidate, name: bn });
  return { a, b };
}

describe.skipIf(!haveNginx)('deploy/nginx.conf: one node behind nginx', () => {
  test('wss:// to a call, http redirected, health open, metrics closed, X-Forwarded-For not spoofable', async () => {
    // The example config file, as the unit passes it; only the port is the test's.
    const cli = parseCli(['--config', join(root, 'deploy/signalbox.json'), '--port', '0', '--max-connections-per-ip', '2'], {}, (p) => readFileSync(p, 'utf8'));
    if (cli.kind !== 'run') throw new Error('unreachable');
    expect(cli.config).toMatchObject({ host: '127.0.0.1', trustProxy: true });
    const app = await createBunServer({ config: cli.config, log: silentLogger, version: 'test' });
    const nginx = await startNginx('one', ({ http, https }) =>
      rewrite(deploy('nginx.conf'), [
        ['server 127.0.0.1:9090;', `server 127.0.0.1:${app.server.port};`],
        ['listen 80;', `listen 127.0.0.1:${http};`],
        ['listen 443 ssl;', `listen 127.0.0.1:${https} ssl;`],
        ['/etc/letsencrypt/live/call.example.com/fullchain.pem', cert],
        ['/etc/letsencrypt/live/call.example.com/privkey.pem', key],
      ]),
    );
    try {
      const redirect = await get(`${nginx.http}/anything`);
      expect(redirect.status).toBe(301);
      expect(redirect.headers.get('location')).toStartWith('https://');
      const health = await get(`${nginx.https}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });
      expect((await get(`${nginx.https}/readyz`)).status).toBe(200);
      expect((await get(`${nginx.https}/metrics`)).status).toBe(403);

      const { a, b } = await call(nginx.wss, 'alice', 'bob');
      // Two connections from 127.0.0.1 fill --max-connections-per-ip 2. A client claiming
      // another address is still counted by the one nginx saw (the list's last entry).
      const refused = new Client(nginx.wss, undefined, { 'X-Forwarded-For': '203.0.113.9' }, insecure);
      await expect(refused.opened).rejects.toThrow();
      const metrics = await (await fetch(`http://127.0.0.1:${app.server.port}/metrics`)).text();
      expect(metrics).toContain('signalbox_upgrades_rejected_total{reason="too_many_from_ip"} 1');
      a.send({ type: 'leave', name: 'bob' });
      expect(await b.next()).toEqual({ type: 'leave', name: 'alice' });
      await Promise.all([a.close(), b.close()]);
    } finally {
      await nginx.stop();
      await app.stop();
    }
  });
});

test('the proxy timeouts of both nginx examples outlast the idle timeout', () => {
  for (const file of ['nginx.conf', 'nginx-cluster.conf']) {
    const text = deploy(file);
    for (const directive of ['proxy_read_timeout', 'proxy_send_timeout']) {
      const seconds = Number(new RegExp(`${directive} (\\d+)s;`).exec(text)?.[1]);
      expect(seconds).toBeGreaterThan(Number(OPTIONS.idleTimeout.default) * 2);
    }
  }
});

// ── three nodes, Redis, nginx ─────────────────────────────────────────────────

const haveRedisHere = haveNginx && requireRedis('the three-node deployment behind nginx');

describe.skipIf(!haveRedisHere)('deploy/nginx-cluster.conf and deploy/redis.conf: three nodes', () => {
  test('calls, rooms and discovery across nodes through nginx, on the ACL user alone; a node down is skipped', async () => {
    // Redis as deploy/redis.conf sets it up, on a loopback port of its own.
    const port = await freePort();
    const redisConf = join(dir, 'redis.conf');
    writeFileSync(redisConf, rewrite(deploy('redis.conf'), [['bind 10.0.0.5', 'bind 127.0.0.1'], ['port 6379', `port ${port}`]]));
    const redis = Bun.spawn(['redis-server', redisConf], { stdout: 'ignore', stderr: 'pipe' });
    const cli = (...args: string[]) => Bun.spawnSync(['redis-cli', '-p', String(port), ...args]).stdout.toString().trim();
    await eventually(() => cli('ping') === 'PONG', 5000, 'redis-server from deploy/redis.conf');
    const password = /^user signalbox on >(\S+) /m.exec(deploy('redis.conf'))![1]!;

    const config: Config = {
      ...defaults,
      host: '127.0.0.1',
      port: 0,
      trustProxy: true,
      discovery: true,
      redis: `redis://signalbox:${password}@127.0.0.1:${port}`,
      // Short, so name refreshes and peer checks run during the test.
      presenceTtlMs: 600,
      shutdownTimeoutMs: 200,
    };
    const apps: Array<Awaited<ReturnType<typeof createBunServer>>> = [];
    let nginx: Nginx | undefined;
    try {
      for (let i = 1; i <= 3; i++) {
        const cluster = new RedisCluster({ url: config.redis, prefix: config.redisPrefix, presenceTtlMs: config.presenceTtlMs, node: `n${i}`, log: silentLogger });
        await cluster.connect();
        apps.push(await createBunServer({ config, log: silentLogger, version: 'test', cluster }));
      }
      nginx = await startNginx('three', ({ http, https }) =>
        rewrite(deploy('nginx-cluster.conf'), [
          ...apps.map((app, i): [string, string] => [`server 10.0.0.1${i + 1}:9090`, `server 127.0.0.1:${app.server.port}`]),
          ['listen 80;', `listen 127.0.0.1:${http};`],
          ['listen 443 ssl;', `listen 127.0.0.1:${https} ssl;`],
          ['/etc/letsencrypt/live/call.example.com/fullchain.pem', cert],
          ['/etc/letsencrypt/live/call.example.com/privkey.pem', key],
        ]),
      );
      const connectionsPerNode = async () =>
        Promise.all(apps.map(async (app) => ((await (await fetch(`http://127.0.0.1:${app.server.port}/healthz`)).json()) as { connections: number }).connections));

      const { a, b } = await call(nginx.wss, 'alice', 'bob');
      // least_conn put the two on different nodes: the call crossed Redis.
      expect((await connectionsPerNode()).sort()).toEqual([0, 1, 1]);
      a.send({ type: 'join', room: 'standup' });
      expect(await a.nextOfType('joined')).toMatchObject({ room: 'standup', peers: [] });
      b.send({ type: 'join', room: 'standup' });
      expect(await b.nextOfType('joined')).toMatchObject({ room: 'standup', peers: ['alice'] });
      expect(await a.nextOfType('peer-joined')).toMatchObject({ room: 'standup', name: 'bob' });
      a.send({ type: 'list' });
      expect(await a.nextOfType('users')).toMatchObject({ users: ['alice', 'bob'] });
      b.send({ type: 'leave-room', room: 'standup' });
      expect(await a.nextOfType('peer-left')).toMatchObject({ room: 'standup', name: 'bob' });
      a.send({ type: 'leave', name: 'bob' });
      expect(await b.nextOfType('leave')).toMatchObject({ name: 'alice' });
      // Long enough for names to be refreshed and remote peers checked a few times.
      await Bun.sleep(700);
      await Promise.all([a.close(), b.close()]);
      await eventually(() => cli('zcard', 'signalbox:users') === '0', 3000, 'names released');
      // Every command signalbox sent was one the ACL user may send: Redis logs each refusal.
      expect(cli('acl', 'log')).toBe('');

      // A node goes down: nginx skips it, and everyone still gets in.
      await apps.pop()!.stop();
      const late = await Promise.all(['carol', 'dave', 'erin'].map(() => wssClient(nginx!.wss)));
      for (const [i, c] of late.entries()) await c.login(['carol', 'dave', 'erin'][i]!);
      await Promise.all(late.map((c) => c.close()));
      expect((await get(`${nginx.https}/readyz`)).status).toBe(200);
      expect((await get(`${nginx.https}/metrics`)).status).toBe(403);
    } finally {
      await nginx?.stop();
      for (const app of apps) await app.stop();
      redis.kill('SIGKILL');
      await redis.exited;
    }
  }, 30_000);
});

// ── systemd ───────────────────────────────────────────────────────────────────

const haveSystemd = need('systemd-analyze', Bun.which('systemd-analyze') !== null, 'systemd');
const unit = deploy('signalbox.service');

describe.skipIf(!haveSystemd)('deploy/signalbox.service', () => {
  /** The unit with ExecStart pointing at a file that exists here (verify checks it). */
  const unitFile = () => {
    const path = join(dir, 'signalbox.service');
    writeFileSync(path, rewrite(unit, [['ExecStart=/usr/local/bin/signalbox ', `ExecStart=${process.execPath} `]]));
    return path;
  };

  test('systemd-analyze verify finds nothing to say', () => {
    const verify = Bun.spawnSync(['systemd-analyze', 'verify', unitFile()], { stdout: 'pipe', stderr: 'pipe', cwd: dir });
    expect(verify.stderr.toString() + verify.stdout.toString()).toBe('');
    expect(verify.exitCode).toBe(0);
  });

  test('hardened: the options that matter, and an exposure rated OK', () => {
    for (const line of [
      'DynamicUser=yes',
      'CapabilityBoundingSet=',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'RestrictNamespaces=yes',
      'SystemCallFilter=@system-service',
      'LimitNOFILE=65536',
      'MemoryMax=1G',
    ]) {
      expect(unit.split('\n')).toContain(line);
    }
    // The JIT needs writable-then-executable memory: this option would kill the server.
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
    const security = Bun.spawnSync(['systemd-analyze', 'security', '--offline=yes', '--no-pager', unitFile()], { stdout: 'pipe', stderr: 'pipe', cwd: dir });
    const score = Number(/Overall exposure level for signalbox\.service: ([\d.]+)/.exec(security.stdout.toString())?.[1]);
    expect(score).toBeLessThanOrEqual(1.5);
  });

  test('every environment variable it sets is an option', () => {
    const known = new Set(Object.keys(OPTIONS).map(envOf));
    const set = [...unit.matchAll(/^Environment=(\w+)=/gm)].map((m) => m[1]);
    expect(set.length).toBeGreaterThan(0);
    for (const name of set) expect(known.has(name!)).toBe(true);
  });
});

/** The system calls each group of systemd's filter allows, groups expanded. */
function syscallGroups(): Map<string, Set<string>> {
  const text = Bun.spawnSync(['systemd-analyze', 'syscall-filter', '--no-pager'], { stdout: 'pipe' }).stdout.toString();
  const raw = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('@')) raw.set(line.split(/\s/)[0]!, (current = []));
    else if (current && /^\s+[@a-z_0-9-]+$/.test(line)) current.push(line.trim());
  }
  const expand = (group: string): Set<string> => new Set((raw.get(group) ?? []).flatMap((x) => (x.startsWith('@') ? [...expand(x)] : [x])));
  return new Map([...raw.keys()].map((g) => [g, expand(g)]));
}

const haveStrace = haveSystemd && need('strace', Bun.which('strace') !== null, 'strace');
const canTrace = haveStrace && Bun.spawnSync(['strace', '-o', '/dev/null', 'true']).exitCode === 0;
if (haveStrace && !canTrace) console.warn('SKIPPED: the system call filter check (strace may not trace here: no ptrace permission)');

describe.skipIf(!canTrace)("the unit's system call filter", () => {
  test('allows every call the server makes through start, a call, every endpoint and SIGTERM', async () => {
    const allowed = new Set<string>();
    const denied = new Set<string>();
    const groups = syscallGroups();
    for (const [, spec] of unit.matchAll(/^SystemCallFilter=(.+)$/gm)) {
      const deny = spec!.startsWith('~');
      for (const g of spec!.replace(/^~/, '').split(/\s+/)) for (const call of groups.get(g) ?? [g]) (deny ? denied : allowed).add(call);
    }
    expect(allowed.size).toBeGreaterThan(100);

    const trace = join(dir, 'strace');
    const server = await spawnServer(['strace', '-f', '-qq', '-o', trace, process.execPath, join(root, 'src/main.ts'), '--port', '0', '--host', '127.0.0.1']);
    // The server is the first process in the trace; strace ends when it does.
    const pid = Number(/^(\d+) /.exec(readFileSync(trace, 'utf8'))?.[1]);
    expect(pid).toBeGreaterThan(0);
    const url = `ws://127.0.0.1:${server.port}/`;
    const [a, b] = await Promise.all([Client.connect(url), Client.connect(url)]);
    await a.login('alice');
    await b.login('bob');
    a.send({ type: 'offer', name: 'bob', offer: { type: 'offer', sdp: 'v=0' } });
    await b.next();
    for (const path of ['/', '/healthz', '/readyz', '/metrics', '/ice-servers', '/asyncapi.json']) await (await fetch(`http://127.0.0.1:${server.port}${path}`)).text();
    await Promise.all([a.close(), b.close()]);
    process.kill(pid, 'SIGTERM');
    const code = await Promise.race([server.proc.exited, Bun.sleep(10_000).then(() => 'timeout')]);
    if (code !== 0) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`the traced server did not exit cleanly (${code}):\n${server.tail.join('\n')}`);
    }

    const used = new Set([...readFileSync(trace, 'utf8').matchAll(/^\d+\s+([a-z_0-9]+)\(/gm)].map((m) => m[1]!));
    expect(used.size).toBeGreaterThan(20);
    const refused = [...used].filter((call) => !allowed.has(call) || denied.has(call));
    expect(refused).toEqual([]);
  }, 60_000);
});

// ── the container file ────────────────────────────────────────────────────────

describe('deploy/Containerfile (read: no container engine runs here)', () => {
  // Instructions, with continuation lines joined and comments dropped.
  const instructions = deploy('Containerfile')
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.trim().split(/\s+/);
      return { op: op!, args: rest.join(' ') };
    });
  const one = (op: string) => {
    const found = instructions.filter((i) => i.op === op);
    expect(found).toHaveLength(1);
    return found[0]!.args;
  };

  test('instructions are known, upper case, and the base has glibc, no shell, a nonroot user', () => {
    const known = ['FROM', 'ARG', 'COPY', 'ENV', 'EXPOSE', 'USER', 'STOPSIGNAL', 'ENTRYPOINT'];
    for (const { op } of instructions) expect(known).toContain(op);
    expect(one('FROM')).toBe('gcr.io/distroless/base-nossl-debian12:nonroot');
    expect(one('USER')).toBe('nonroot');
    expect(one('STOPSIGNAL')).toBe('SIGTERM');
  });

  test('it copies the file the build writes and runs it, in exec form', () => {
    // The build context is dist/: the default file is package.json's build output there.
    const outfile = /--outfile dist\/(\S+)/.exec(pkg.scripts.build)?.[1];
    expect(one('ARG')).toBe(`BINARY=${outfile}`);
    const [, target] = /^--chmod=0555 \$\{BINARY\} (\S+)$/.exec(one('COPY')) ?? [];
    expect(target).toBeDefined();
    expect(JSON.parse(one('ENTRYPOINT'))).toEqual([target]);
  });

  test('its environment is real options, with the exposed port', () => {
    const env = Object.fromEntries([...one('ENV').matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
    const known = new Set(Object.keys(OPTIONS).map(envOf));
    for (const name of Object.keys(env)) expect(known.has(name)).toBe(true);
    expect(one('EXPOSE')).toBe(env.SIGNALBOX_PORT!);
    // The values parse as the server would parse them.
    const cli = parseCli([], env);
    expect(cli.kind).toBe('run');
  });
});
