import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkg from '../package.json' with { type: 'json' };
import { Client } from './helpers.ts';

/**
 * The compiled executable is what users download: build it exactly as `make build` does,
 * then run it with an environment that has no trace of Bun.
 */
const root = join(import.meta.dir, '..');
let dir: string;
let exe: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'signalbox-bin-'));
  exe = join(dir, 'signalbox');
  // The flags of `bun run build` (package.json), run by this very Bun, to another file.
  const [, ...args] = pkg.scripts.build.split(' ').filter((a, i, all) => a !== '--outfile' && all[i - 1] !== '--outfile');
  const build = Bun.spawnSync([process.execPath, ...args, '--outfile', exe], { cwd: root, stderr: 'pipe', stdout: 'pipe' });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(args: string[] = []) {
  // An emptied environment: no BUN_*, no PATH entry with bun in it, a cwd without bunfig.
  const proc = Bun.spawn([exe, '--port', '0', '--host', '127.0.0.1', ...args], {
    cwd: dir,
    env: { PATH: '/usr/bin:/bin' },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const reader = proc.stdout.getReader();
  let out = '';
  const deadline = Date.now() + 10_000;
  while (!/listening url=ws:\/\/[^:]+:(\d+)/.test(out)) {
    if (Date.now() > deadline) throw new Error(`no listening line: ${out}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited early: ${out}${await new Response(proc.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const port = Number(/listening url=ws:\/\/[^:]+:(\d+)/.exec(out)![1]);
  return { proc, url: `ws://127.0.0.1:${port}/` };
}

describe('the compiled executable', () => {
  test('builds to one file', () => {
    expect(statSync(exe).size).toBeGreaterThan(1_000_000);
  });

  test('runs without Bun: login, offer, answer, then SIGTERM exits 0', async () => {
    const { proc, url } = await start();
    const [a, b] = await Promise.all([Client.connect(url), Client.connect(url)]);
    await a.login('alice');
    await b.login('bob');
    a.send({ type: 'offer', name: 'bob', offer: { type: 'offer', sdp: 'v=0' } });
    expect(await b.next()).toEqual({ type: 'offer', offer: { type: 'offer', sdp: 'v=0' }, name: 'alice' });
    b.send({ type: 'answer', name: 'alice', answer: { type: 'answer', sdp: 'v=0' } });
    expect(await a.next()).toEqual({ type: 'answer', answer: { type: 'answer', sdp: 'v=0' }, name: 'bob' });
    proc.kill('SIGTERM');
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    expect(ca.code).toBe(1001);
    expect(cb.code).toBe(1001);
    expect(await proc.exited).toBe(0);
  }, 20_000);

  test('serves the call page from inside the executable; --no-demo serves the short text', async () => {
    for (const [args, type, marker] of [
      [[], 'text/html', '<title>signalbox: call page</title>'],
      [['--no-demo'], 'text/plain', 'a WebRTC signaling server'],
    ] as const) {
      const { proc, url } = await start([...args]);
      const res = await fetch(url.replace('ws:', 'http:'));
      expect(res.headers.get('content-type')).toStartWith(type);
      expect(await res.text()).toContain(marker);
      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    }
  }, 20_000);

  test('--version, --help and a bad flag', () => {
    const env = { PATH: '/usr/bin:/bin' };
    const version = Bun.spawnSync([exe, '--version'], { env, cwd: dir });
    expect(version.stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = Bun.spawnSync([exe, '--help'], { env, cwd: dir });
    expect(help.exitCode).toBe(0);
    expect(help.stdout.toString()).toContain('--port <n>');
    const bad = Bun.spawnSync([exe, '--port', 'x'], { env, cwd: dir });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString().trim().split('\n')).toEqual(['signalbox: invalid --port: must be an integer (got "x")']);
  });
});
