import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildExecutable } from '../build.ts';

/**
 * Real browsers through the compiled signalbox. Chromium gathers ICE candidates on every
 * interface it can see, so the browser, the server and runner.ts run inside a network
 * namespace that has only `lo` (root: `unshare --net`; elsewhere an unprivileged user
 * namespace, where the kernel allows one). runner.ts drives the pages and reports facts;
 * the tests here judge them.
 *
 * Without Chromium or a namespace these tests skip, loudly; under CI=true they fail instead.
 */
const CHROMIUM = '/usr/bin/chromium';
const RUNNER = join(import.meta.dir, 'runner.ts');
/** `SIGNALBOX_SCREENSHOT=docs/screenshot.png` also saves the page in a call (`make screenshot`). */
const SCREENSHOT = process.env.SIGNALBOX_SCREENSHOT;

type Setup = { ns: string[]; ip: string } | { missing: string };

function setup(): Setup {
  if (process.platform !== 'linux') return { missing: 'network namespaces need Linux' };
  if (!existsSync(CHROMIUM)) return { missing: `${CHROMIUM} not found (Debian: apt-get install chromium)` };
  const ip = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
  if (ip === undefined) return { missing: 'the ip command (iproute2) not found' };
  const ways = [['unshare', '--net'], ['unshare', '--user', '--map-root-user', '--net']];
  for (const ns of process.getuid?.() === 0 ? ways : ways.slice(1)) {
    const probe = Bun.spawnSync([...ns, '--', ip, 'link', 'set', 'lo', 'up'], { stdout: 'ignore', stderr: 'ignore' });
    if (probe.exitCode === 0) return { ns, ip };
  }
  return { missing: 'cannot create a network namespace (run as root, or allow unprivileged user namespaces)' };
}

const env = setup();
const CI = process.env.CI === 'true';
if ('missing' in env) {
  const what = CI ? 'FAILING (CI=true)' : 'SKIPPED';
  console.warn(`\n*** browser end-to-end tests ${what}: ${env.missing} ***\n`);
}

interface Result {
  scenario: string;
  facts: Record<string, any>;
  error?: string;
}

const slots = new Map<string, PromiseWithResolvers<Result>>();
const slot = (name: string) => {
  let s = slots.get(name);
  if (s === undefined) slots.set(name, (s = Promise.withResolvers<Result>()));
  return s;
};

/**
 * The facts runner.ts reported for `scenario`. A scenario that failed there fails here,
 * unless it failed after gathering every fact in `needed`.
 */
async function facts(scenario: string, ...needed: string[]): Promise<Record<string, any>> {
  const r = await slot(scenario).promise;
  const enough = needed.length > 0 && needed.every((k) => k in r.facts);
  if (r.error !== undefined && !enough) throw new Error(`${scenario}: ${r.error}\nfacts: ${JSON.stringify(r.facts, null, 1)}`);
  return r.facts;
}

let dir: string | undefined;
let runner: { kill(): void; exited: Promise<number> } | undefined;

/** SIGKILL the runner's process group: the runner, the server and the browser. */
const killGroup = (pid: number) => {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
};

beforeAll(() => {
  if ('missing' in env) return;
  dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-'));
  const exe = join(dir, 'signalbox');
  buildExecutable(exe);
  const shot = SCREENSHOT === undefined ? [] : ['--screenshot', SCREENSHOT];
  // In the namespace: bring lo up, then run the runner (which starts the server and
  // Chromium), in a session of its own so that one signal to the group ends all of them.
  const proc = Bun.spawn(
    [...env.ns, '--', 'setsid', 'sh', '-c', '"$0" link set lo up && exec "$@"', env.ip, process.execPath, RUNNER, exe, ...shot],
    // TMPDIR and HOME: Chromium's fresh profile (Playwright makes one per launch), its
    // crash database and PulseAudio's files land in `dir`, which afterAll removes.
    { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, TMPDIR: dir, HOME: dir } },
  );
  runner = { exited: proc.exited, kill: () => killGroup(proc.pid) };
  const killer = setTimeout(() => killGroup(proc.pid), 240_000);
  void (async () => {
    let buffer = '';
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith('@@e2e ')) continue;
        const result = JSON.parse(line.slice(6)) as Result;
        slot(result.scenario).resolve(result);
      }
    }
    const code = await proc.exited;
    clearTimeout(killer);
    const stderr = (await new Response(proc.stderr).text()).slice(-3000);
    // Settles only the scenarios the runner never reported.
    for (const s of slots.values()) s.reject(new Error(`runner ended (exit ${code}) before reporting this:\n${stderr}`));
  })();
}, 60_000);

afterAll(async () => {
  // The runner closes the browser and the server after its last scenario; killed earlier,
  // it would leave Chromium writing into `dir` after we remove it.
  if (runner !== undefined) {
    const gone = await Promise.race([runner.exited.then(() => true), Bun.sleep(20_000).then(() => false)]);
    if (!gone) runner.kill();
    await runner.exited;
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const SCENARIOS = ['namespace', 'call', 'tab-close', 'decline', 'errors', 'seed-client', 'discovery', 'room', 'resume', 'server-stops'];
for (const name of SCENARIOS) slot(name).promise.catch(() => {}); // judged by the tests, not unhandled

/** A test that runs where the browser can, skips loudly elsewhere, and fails under CI. */
const e2e = (name: string, fn: () => Promise<void>) => {
  if (!('missing' in env)) return test(name, fn, 120_000);
  if (CI) return test(name, () => { throw new Error(`cannot run: ${env.missing}`); });
  return test.skip(`${name} [needs ${CHROMIUM} and a network namespace]`, fn);
};

describe('in a real browser', () => {
  e2e('the browser and server see no network but loopback', async () => {
    expect((await facts('namespace')).interfaces).toEqual(['lo']);
  });

  e2e('two pages log in, call, and chat over the data channel both ways', async () => {
    const f = await facts('call', 'beforeLogin', 'headers', 'incoming', 'connected', 'messages', 'pageErrors');
    // The page connects on login, so the server's login timeout never closes an idle page.
    expect(f.beforeLogin).toBe('signaling: not connected');
    expect(f.headers.type).toContain('text/html');
    expect(f.headers.csp).toContain("script-src 'sha256-");
    expect(f.incoming).toBe('alice is calling you.');
    for (const who of ['alice', 'bob']) {
      expect(f.connected[who]).toMatchObject({ connection: 'connected', chat: 'open', inCallShown: true });
      expect(['connected', 'completed']).toContain(f.connected[who].ice);
      expect(f.messages[who]).toEqual(['alice: hello bob', 'bob: hi alice']);
    }
    expect(f.pageErrors).toEqual([]);
  });

  e2e('without --discovery the page offers the name field only, and says nothing about it', async () => {
    const { noDiscovery } = await facts('call', 'noDiscovery');
    expect(noDiscovery).toEqual({ panelShown: false, notice: 'Logged in as alice. Enter a name to call, or wait for a call.' });
  });

  e2e('the page uses the ICE servers the server hands out with the login', async () => {
    const { ice } = await facts('call', 'ice');
    expect(ice.shown).toBe(ice.stunUrl);
    expect(ice.stunPackets).toBeGreaterThan(0);
  });

  e2e('with the fake camera, the callee decodes video frames', async () => {
    const { video } = await facts('call', 'video');
    expect(video.framesDecoded).toBeGreaterThan(0);
    expect(video.width).toBeGreaterThan(0);
    expect(video.status).toMatch(/^\d+×\d+, \d+ frames decoded$/);
  });

  e2e('the page fits a phone-sized screen in a call', async () => {
    const { layout } = await facts('call', 'layout');
    expect(layout.viewport).toBe(360);
    expect(layout.scrollWidth).toBeLessThanOrEqual(layout.viewport);
    expect(layout.videoShown).toBe(true);
  });

  e2e('hang-up is seen by the other page', async () => {
    const { afterHangUp } = await facts('call');
    expect(afterHangUp.alice).toMatchObject({ notice: 'You ended the call with bob.', inCallShown: false, callEnabled: true });
    expect(afterHangUp.bob).toMatchObject({ notice: 'alice left the call.', inCallShown: false, callEnabled: true });
  });

  e2e('closing a tab mid-call shows the other side that the peer left', async () => {
    const { carol } = await facts('tab-close');
    expect(carol).toMatchObject({ notice: 'dave left the call.', call: 'none', inCallShown: false });
  });

  e2e('declining (leave) ends the caller\'s ringing', async () => {
    const f = await facts('decline');
    expect(f.calling).toMatchObject({ call: 'calling (to frank)', notice: 'Calling frank…' });
    expect(f.erin).toMatchObject({ notice: 'frank declined the call.', callEnabled: true });
    expect(f.frank).toMatchObject({ notice: "You declined erin's call.", incomingShown: false });
  });

  e2e('server errors read as sentences', async () => {
    const f = await facts('errors');
    expect(f.notOnline.notice).toBe('nobody is not online. Check the spelling, or ask them to open this page and log in.');
    expect(f.nameTaken).toEqual({
      notice: 'The name gina is taken. Choose another.',
      loginShown: true,
      signaling: 'signaling: not connected',
    });
    expect(f.retried).toBe('Logged in as gina2. Enter a name to call, or wait for a call.');
  });

  e2e('a seed-tutorial-style client completes a data-channel call (the compatibility contract)', async () => {
    const { a, b } = await facts('seed-client');
    const chat = 'seed-alice: hello from a seed client\nseed-bob: and back';
    expect(a.chat.trim()).toBe(chat);
    expect(b.chat.trim()).toBe(chat);
    const seed = new Set(['login', 'offer', 'answer', 'candidate', 'leave']);
    for (const seen of [a.seen, b.seen]) for (const type of seen) expect(seed.has(type)).toBe(true);
    expect(a.seen).toContain('answer');
    expect(a.seen).toContain('candidate');
    expect(b.seen).toEqual(expect.arrayContaining(['offer', 'candidate', 'leave']));
  });

  e2e('with --discovery, the list shows who logs in and leaves, and a click on a name calls them', async () => {
    const f = await facts('discovery');
    expect(f.alone).toEqual({ list: [], none: true });
    expect(f.lists).toEqual({ nina: ['omar'], omar: ['nina'] });
    expect(f.incoming).toBe('nina is calling you.');
    expect(f.duringCall).toBe(1); // no second call while in one
    expect(f.omarLayout.scrollWidth).toBeLessThanOrEqual(f.omarLayout.viewport);
    expect(f.afterClose).toEqual([]);
    expect(f.pageErrors).toEqual([]);
  });

  e2e('three pages in a room: every pair connects, chat reaches everyone, video tiles play', async () => {
    const f = await facts('room');
    expect(f.joined).toEqual([
      'You are in the room standup, alone so far. Others join by entering its name.',
      'You are in the room standup with kim.',
      'You are in the room standup with kim, lee.',
    ]);
    const others = (me: string) => ['kim', 'lee', 'max'].filter((n) => n !== me);
    for (const [i, me] of ['kim', 'lee', 'max'].entries()) {
      expect(f.members[i]).toEqual(others(me).map((n) => `${n} — connected, chat open`));
      expect(f.messages[i]).toEqual(expect.arrayContaining(['kim: hello room', 'lee: hi from lee']));
      expect(f.messages[i]).toHaveLength(2);
      expect(f.tiles[i]).toEqual(['you', ...others(me)].sort());
    }
    expect(f.layout.scrollWidth).toBeLessThanOrEqual(f.layout.viewport);
    expect(f.afterLeave).toEqual([['lee — connected, chat open'], ['kim — connected, chat open'], []]);
    expect(f.maxNotice).toBe('You left the room standup.');
    expect(f.pageErrors).toEqual([]);
  });

  e2e('a connection cut mid-call resumes: the call and its data channel go on', async () => {
    const f = await facts('resume');
    expect(f.cut.ivy.signaling).toBe('signaling: reconnecting…');
    expect(f.cut.ivy.notice).toStartWith('The connection to the server dropped. Reconnecting in');
    expect(f.cut.jack.notice).toBe("ivy's connection to the server dropped; waiting for them to come back…");
    expect(f.cut.jack.line).toBe('In a call with ivy (ivy is reconnecting…)');
    expect(f.cut.jack.chat).toBe('open');
    expect(f.back.ivy.notice).toBe('Connected to the server again; the call goes on.');
    expect(f.back.jack).toMatchObject({ notice: 'ivy is back.', line: 'In a call with ivy', connection: 'connected' });
    const chat = ['jack: can you hear me?', 'ivy: back again'];
    expect(f.messages).toEqual({ ivy: chat, jack: chat });
    expect(f.hungUp).toMatchObject({ notice: 'ivy left the call.', inCallShown: false });
    expect(f.attempts).toBeGreaterThanOrEqual(3); // the page, the first socket, at least one retry
    // Refused reconnect attempts are logged by Chromium itself; nothing else may go wrong.
    expect(f.pageErrors.filter((e: string) => !/WebSocket connection to .* failed/.test(e))).toEqual([]);
  });

  e2e('when the server stops, the page says so and keeps trying', async () => {
    const { hank } = await facts('server-stops');
    expect(hank.signaling).toBe('signaling: reconnecting…');
    expect(hank.notice).toStartWith('The server is restarting or shutting down. Reconnecting in');
  });
});
