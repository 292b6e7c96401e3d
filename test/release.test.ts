import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkg from '../package.json' with { type: 'json' };
import { buildTarget } from '../deploy/release.ts';
import { Client, spawnServer } from './helpers.ts';

/**
 * The edge build, proven rather than hoped for: the linux-arm64 release executable, built
 * as `make release` builds it, runs under qemu-aarch64 with Debian's arm64 C library as its
 * root and carries a call. .ci/run installs qemu-user and libc6-arm64-cross; a laptop
 * without them skips this loudly, CI fails.
 */
const sysroot = '/usr/aarch64-linux-gnu';
const qemu = Bun.which('qemu-aarch64');
const ready = qemu !== null && existsSync(join(sysroot, 'lib/ld-linux-aarch64.so.1'));
const missing = 'qemu-aarch64 (Debian qemu-user) and libc6-arm64-cross are needed to run the arm64 executable';
if (!ready && process.env.CI !== 'true') console.warn(`SKIPPED test/release.test.ts: ${missing}`);

let dir: string;
let exe: string;
const emulate = (...args: string[]) => [qemu!, '-L', sysroot, exe, ...args];

describe.skipIf(!ready && process.env.CI !== 'true')('the linux-arm64 release executable under qemu', () => {
  beforeAll(() => {
    if (!ready) throw new Error(`${missing}: run .ci/run, or apt-get install qemu-user libc6-arm64-cross`);
    dir = mkdtempSync(join(tmpdir(), 'signalbox-arm64-'));
    exe = buildTarget('linux-arm64', dir);
  }, 120_000);
  afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

  test('is an arm64 executable that prints the version it was built with', async () => {
    const head = new Uint8Array(await Bun.file(exe).slice(0, 20).arrayBuffer());
    expect([...head.slice(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]); // ELF
    expect(head[18]! | (head[19]! << 8)).toBe(183); // e_machine: EM_AARCH64
    const run = Bun.spawnSync(emulate('--version'), { env: { PATH: '/usr/bin:/bin' }, cwd: dir });
    expect(run.stdout.toString().trim()).toBe(pkg.version);
    expect(run.exitCode).toBe(0);
  }, 30_000);

  test('login, offer, answer through it, then SIGTERM exits 0', async () => {
    // An environment with no trace of Bun, a cwd with no bunfig.toml: what a user's box has.
    const server = await spawnServer(emulate('--port', '0', '--host', '127.0.0.1'), { cwd: dir, env: { PATH: '/usr/bin:/bin' } });
    try {
      const url = `ws://127.0.0.1:${server.port}/`;
      const [a, b] = await Promise.all([Client.connect(url), Client.connect(url)]);
      await a.login('pi');
      await b.login('laptop');
      a.send({ type: 'offer', name: 'laptop', offer: { type: 'offer', sdp: 'v=0 arm64' } });
      expect(await b.next(undefined, 10_000)).toEqual({ type: 'offer', offer: { type: 'offer', sdp: 'v=0 arm64' }, name: 'pi' });
      b.send({ type: 'answer', name: 'pi', answer: { type: 'answer', sdp: 'v=0 x64' } });
      expect(await a.next(undefined, 10_000)).toEqual({ type: 'answer', answer: { type: 'answer', sdp: 'v=0 x64' }, name: 'laptop' });
      await server.stop();
      const [ca, cb] = await Promise.all([a.closed, b.closed]);
      expect([ca.code, cb.code]).toEqual([1001, 1001]);
    } finally {
      server.proc.kill('SIGKILL');
    }
  }, 60_000);
});
