import { describe, expect } from 'bun:test';
import { join } from 'node:path';
import { buildExecutable } from '../build.ts';
import { browserSuite } from './harness.ts';

/**
 * Real browsers through the compiled signalbox: runner.ts drives the pages inside a
 * loopback-only network namespace and reports facts; the tests here judge them (the
 * machinery is in harness.ts).
 */
/** `SIGNALBOX_SCREENSHOT=docs/screenshot.png` also saves the page in a call (`make screenshot`). */
const SCREENSHOT = process.env.SIGNALBOX_SCREENSHOT;

const SCENARIOS = ['namespace', 'call', 'tab-close', 'decline', 'errors', 'seed-client', 'discovery', 'room', 'resume', 'server-stops'];
const { facts, e2e } = browserSuite({
  runner: join(import.meta.dir, 'runner.ts'),
  scenarios: SCENARIOS,
  args: (dir) => {
    const exe = join(dir, 'signalbox');
    buildExecutable(exe);
    return [exe, ...(SCREENSHOT === undefined ? [] : ['--screenshot', SCREENSHOT])];
  },
});

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
