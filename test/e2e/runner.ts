/**
 * Drives headless Chromium against the compiled signalbox. browser.test.ts starts this
 * script inside a network namespace that has only `lo`, so every WebRTC candidate and packet
 * stays on loopback. It gathers facts (what each page showed, what crossed) and prints one
 * `@@e2e {json}` line per scenario; the test file judges them.
 *
 * Usage: bun test/e2e/runner.ts <signalbox executable> [--screenshot <file.png>]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import { TcpProxy } from '../proxy.ts';
import { CHROMIUM_ARGS } from './chromium.ts';

const [exe, ...rest] = process.argv.slice(2);
if (!exe) throw new Error('usage: runner.ts <executable> [--screenshot file.png]');
const shotAt = rest.indexOf('--screenshot');
const screenshot = shotAt === -1 ? undefined : rest[shotAt + 1];

/** Every wait is bounded: generous, since other test suites share these two cores. */
const WAIT = 20_000;

type Facts = Record<string, unknown>;

// Functions passed to page.evaluate run in the browser. These stand-ins type them without
// adding the DOM library to the whole program (it would retype WebSocket for every test).
declare const document: any;
declare const window: any;
declare const innerWidth: number;
const report = (scenario: string, facts: Facts, error?: string) =>
  console.log(`@@e2e ${JSON.stringify({ scenario, facts, error })}`);

// ---- the server under test -------------------------------------------------------------

// A STUN server for the server to hand out: it only counts what arrives, which proves the
// page gave the login reply's iceServers to its RTCPeerConnection.
let stunPackets = 0;
const stun = await Bun.udpSocket({ hostname: '127.0.0.1', socket: { data: () => void stunPackets++ } });
const stunUrl = `stun:127.0.0.1:${stun.port}`;

/** Start the executable on a free loopback port with `args`; its log is kept for reports. */
async function startSignalbox(args: string[]) {
  const proc = Bun.spawn([exe!, '--port', '0', '--host', '127.0.0.1', ...args], { stdout: 'pipe', stderr: 'pipe' });
  const log: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${log.join('')}`)), 10_000);
    (async () => {
      // Keep reading after the first line: a full pipe would stall the server.
      for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
        log.push(chunk);
        if (log.length > 200) log.shift();
        const m = /listening url=ws:\/\/[^:]+:(\d+)/.exec(log.join(''));
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      }
    })();
  });
  return { proc, log, port };
}

const { proc: server, log: serverLog, port } = await startSignalbox(['--stun', stunUrl]);
// A second server with --discovery, for the list of who is online.
const listing = await startSignalbox(['--discovery']);
const base = `http://127.0.0.1:${port}/`;

// The seed-style client page is a test fixture, served from a second loopback origin.
const fixture = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch: () => new Response(Bun.file(join(import.meta.dir, 'seed-client.html')), { headers: { 'content-type': 'text/html' } }),
});

const browser: Browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  // Playwright gives every launch a fresh --user-data-dir of its own and removes it after.
  args: CHROMIUM_ARGS,
  timeout: 30_000,
});

// ---- helpers --------------------------------------------------------------------------------

const pageErrors: string[] = [];

async function newPage(ctx: BrowserContext, label: string): Promise<Page> {
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`${label} console: ${m.text()}`);
  });
  return page;
}

const text = async (page: Page, selector: string) => ((await page.textContent(selector)) ?? '').trim();

async function waitText(page: Page, selector: string, expected: string) {
  try {
    await page.waitForFunction(
      ([sel, want]) => document.querySelector(sel!)?.textContent?.includes(want!) ?? false,
      [selector, expected],
      { timeout: WAIT },
    );
  } catch {
    throw new Error(`${selector} never showed ${JSON.stringify(expected)}; it shows ${JSON.stringify(await text(page, selector))}`);
  }
}

/** Open the call page (from `at`) and log in as `name` (the page connects to the server on login). */
async function demo(ctx: BrowserContext, name: string, facts?: Facts, at = base): Promise<Page> {
  const page = await newPage(ctx, name);
  await page.goto(at);
  if (facts) facts.beforeLogin = await text(page, '#signaling');
  await page.fill('#login-name', name);
  await page.click('#login-button');
  await page.locator('#call-view').waitFor({ state: 'visible' });
  await waitText(page, '#signaling', 'signaling: connected');
  return page;
}

/** What a person sees on the call page: the notice line and the status table. */
const view = (page: Page) =>
  page.evaluate(() => {
    const t = (id: string) => document.getElementById(id)?.textContent?.trim() ?? null;
    return {
      notice: t('notice'),
      call: t('st-call'),
      ice: t('st-ice'),
      connection: t('st-conn'),
      chat: t('st-chat'),
      video: t('st-video'),
      incomingShown: !document.getElementById('incoming')!.hidden,
      inCallShown: !document.getElementById('in-call')!.hidden,
      callEnabled: !document.getElementById('call-button').disabled,
    };
  });

const messages = (page: Page, selector = '#messages li:not(.note)') => page.locator(selector).allTextContents();

/** Call `callee` from `caller` and wait until the chat channel is open on both pages. */
async function connectCall(caller: Page, callee: Page, calleeName: string) {
  await caller.fill('#peer-name', calleeName);
  await caller.click('#call-button');
  await callee.locator('#incoming').waitFor({ state: 'visible' });
  await callee.click('#accept');
  await waitText(caller, '#st-chat', 'open');
  await waitText(callee, '#st-chat', 'open');
}

async function scenario(name: string, run: (facts: Facts, contexts: (options?: BrowserContextOptions) => Promise<BrowserContext>) => Promise<void>) {
  const facts: Facts = {};
  const opened: BrowserContext[] = [];
  const contexts = async (options: BrowserContextOptions = {}) => {
    const ctx = await browser.newContext(options);
    opened.push(ctx);
    return ctx;
  };
  pageErrors.length = 0;
  try {
    await run(facts, contexts);
    facts.pageErrors = [...pageErrors];
    report(name, facts);
  } catch (err) {
    const views: Record<string, unknown> = {};
    for (const ctx of opened) for (const p of ctx.pages()) views[p.url()] = await view(p).catch(() => 'closed');
    report(name, { ...facts, views, pageErrors, serverLog: serverLog.join('').slice(-2000) }, String((err as Error).stack ?? err));
  } finally {
    for (const ctx of opened) await ctx.close().catch(() => {});
  }
}

// ---- scenarios --------------------------------------------------------------------------------

await scenario('namespace', async (facts) => {
  // /proc/net/dev lists the interfaces of this process's network namespace (/sys/class/net
  // would show those of whoever mounted sysfs).
  const dev = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2);
  facts.interfaces = dev.map((line) => line.split(':')[0]!.trim()).filter(Boolean).sort();
});

await scenario('call', async (facts, contexts) => {
  // Alice is on a phone-sized screen; both share camera and microphone (fake devices).
  const alice = await demo(await contexts({ viewport: { width: 360, height: 740 } }), 'alice', facts);
  const bob = await demo(await contexts(), 'bob');
  facts.headers = await alice.evaluate(async () => {
    const r = await fetch('/');
    return { type: r.headers.get('content-type'), csp: r.headers.get('content-security-policy') };
  });
  // Without --discovery the page asks once, hears discovery_disabled, and says nothing of it.
  await alice.locator('#online-panel[data-discovery="off"]').waitFor({ state: 'attached' });
  facts.noDiscovery = { panelShown: await alice.isVisible('#online-panel'), notice: await text(alice, '#notice') };
  await alice.check('#use-media');
  await bob.check('#use-media');
  await alice.fill('#peer-name', 'bob');
  await alice.click('#call-button');
  await bob.locator('#incoming').waitFor({ state: 'visible' });
  facts.incoming = await text(bob, '#incoming p');
  await bob.click('#accept');
  await waitText(alice, '#st-chat', 'open');
  await waitText(bob, '#st-chat', 'open');
  facts.connected = { alice: await view(alice), bob: await view(bob) };

  await alice.fill('#chat-input', 'hello bob');
  await alice.click('#chat-send');
  await bob.fill('#chat-input', 'hi alice');
  await bob.press('#chat-input', 'Enter');
  await waitText(bob, '#messages', 'alice: hello bob');
  await waitText(alice, '#messages', 'bob: hi alice');
  facts.messages = { alice: await messages(alice), bob: await messages(bob) };

  // The page reads framesDecoded from getStats into its status table; read the element too.
  await waitText(bob, '#st-video', 'frames decoded');
  await waitText(alice, '#st-video', 'frames decoded');
  facts.video = await bob.evaluate(() => {
    const v = document.getElementById('remote-video');
    return {
      status: document.getElementById('st-video')!.textContent,
      framesDecoded: Number(/(\d+) frames decoded/.exec(document.getElementById('st-video')!.textContent ?? '')?.[1] ?? 0),
      width: v.videoWidth,
      height: v.videoHeight,
    };
  });
  facts.ice = { stunUrl, shown: await text(alice, '#st-servers'), stunPackets };
  facts.layout = await alice.evaluate(() => ({
    viewport: innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    videoShown: !document.getElementById('videos')!.hidden,
  }));
  if (screenshot) {
    await alice.waitForTimeout(1500); // let the pictures settle
    await alice.screenshot({ path: screenshot, fullPage: true });
  }

  await alice.click('#hang-up');
  await waitText(bob, '#notice', 'alice left the call.');
  facts.afterHangUp = { alice: await view(alice), bob: await view(bob) };
});

await scenario('tab-close', async (facts, contexts) => {
  const carol = await demo(await contexts(), 'carol');
  const dave = await demo(await contexts(), 'dave');
  await connectCall(carol, dave, 'dave');
  await dave.close();
  await waitText(carol, '#notice', 'dave left the call.');
  facts.carol = await view(carol);
});

await scenario('decline', async (facts, contexts) => {
  const erin = await demo(await contexts(), 'erin');
  const frank = await demo(await contexts(), 'frank');
  await erin.fill('#peer-name', 'frank');
  await erin.click('#call-button');
  await frank.locator('#incoming').waitFor({ state: 'visible' });
  facts.calling = await view(erin);
  await frank.click('#decline');
  await waitText(erin, '#notice', 'frank declined the call.');
  facts.erin = await view(erin);
  facts.frank = await view(frank);
});

await scenario('errors', async (facts, contexts) => {
  const gina = await demo(await contexts(), 'gina');
  await gina.fill('#peer-name', 'nobody');
  await gina.click('#call-button');
  await waitText(gina, '#notice', 'nobody is not online');
  facts.notOnline = await view(gina);

  const twin = await newPage(await contexts(), 'twin');
  await twin.goto(base);
  await twin.fill('#login-name', 'gina');
  await twin.click('#login-button');
  await waitText(twin, '#notice', 'taken');
  facts.nameTaken = {
    notice: await text(twin, '#notice'),
    loginShown: await twin.isVisible('#login-view'),
    signaling: await text(twin, '#signaling'),
  };
  // Another name works: the page opens a new connection for the new attempt.
  await twin.fill('#login-name', 'gina2');
  await twin.click('#login-button');
  await twin.locator('#call-view').waitFor({ state: 'visible' });
  facts.retried = await text(twin, '#notice');
});

await scenario('seed-client', async (facts, contexts) => {
  const url = `http://127.0.0.1:${fixture.port}/?server=${encodeURIComponent(`ws://127.0.0.1:${port}`)}`;
  const pages: Page[] = [];
  for (const name of ['seed-alice', 'seed-bob']) {
    const page = await newPage(await contexts(), name);
    await page.goto(url);
    await page.waitForFunction(() => window.conn.readyState === 1);
    await page.fill('#usernameInput', name);
    await page.click('#loginBtn');
    await page.locator('#callPage').waitFor({ state: 'visible' });
    pages.push(page);
  }
  const [a, b] = pages as [Page, Page];
  await a.fill('#callToUsernameInput', 'seed-bob');
  await a.click('#callBtn');
  for (const p of pages) await p.waitForFunction(() => window.dataChannel.readyState === 'open');
  await a.fill('#msgInput', 'hello from a seed client');
  await a.click('#sendMsgBtn');
  await waitText(b, '#chatarea', 'seed-alice: hello from a seed client');
  await b.fill('#msgInput', 'and back');
  await b.click('#sendMsgBtn');
  await waitText(a, '#chatarea', 'seed-bob: and back');
  await a.click('#hangUpBtn');
  await b.waitForFunction(() => window.seen.includes('leave'));
  const seen = (p: Page) => p.evaluate(() => ({ seen: window.seen, chat: document.getElementById('chatarea')!.innerText }));
  facts.a = await seen(a);
  facts.b = await seen(b);
});

await scenario('discovery', async (facts, contexts) => {
  const at = `http://127.0.0.1:${listing.port}/`;
  const nina = await demo(await contexts(), 'nina', undefined, at);
  await nina.locator('#online-panel[data-discovery="on"]').waitFor({ state: 'visible' });
  facts.alone = { list: await nina.locator('#online-list button').allTextContents(), none: await nina.isVisible('#online-none') };
  // omar logs in after nina: her list learns of him from a presence event.
  const omar = await demo(await contexts({ viewport: { width: 360, height: 740 } }), 'omar', undefined, at);
  await waitText(nina, '#online-list', 'omar');
  await omar.locator('#online-panel[data-discovery="on"]').waitFor({ state: 'visible' });
  facts.lists = {
    nina: await nina.locator('#online-list button').allTextContents(),
    omar: await omar.locator('#online-list button').allTextContents(),
  };
  // A click on his name calls him.
  await nina.locator('#online-list button', { hasText: 'omar' }).click();
  await omar.locator('#incoming').waitFor({ state: 'visible' });
  facts.incoming = await text(omar, '#incoming p');
  await omar.click('#accept');
  await waitText(nina, '#st-chat', 'open');
  await waitText(omar, '#st-chat', 'open');
  facts.duringCall = await nina.locator('#online-list button:disabled').count();
  await omar.fill('#chat-input', 'found you');
  await omar.press('#chat-input', 'Enter');
  await waitText(nina, '#messages', 'omar: found you');
  facts.omarLayout = await omar.evaluate(() => ({ viewport: innerWidth, scrollWidth: document.documentElement.scrollWidth }));
  // He closes his tab: he leaves her list too.
  await omar.close();
  await waitText(nina, '#notice', 'omar left the call.');
  await nina.waitForFunction(() => !document.getElementById('online-list')!.textContent!.includes('omar'));
  facts.afterClose = await nina.locator('#online-list button').allTextContents();
});

await scenario('room', async (facts, contexts) => {
  const names = ['kim', 'lee', 'max'] as const;
  const pages: Page[] = [];
  for (const name of names) {
    // kim is on a phone-sized screen; everyone shares the fake camera.
    const page = await demo(await contexts(name === 'kim' ? { viewport: { width: 360, height: 740 } } : {}), name);
    await page.check('#use-media');
    await page.fill('#room-name', 'standup');
    await page.click('#join-button');
    await waitText(page, '#notice', 'You are in the room standup');
    pages.push(page);
  }
  facts.joined = await Promise.all(pages.map((p) => text(p, '#notice')));
  // Every pair: a connection with its chat channel open, seen from both ends.
  for (const [i, page] of pages.entries()) {
    for (const other of names) if (other !== names[i]) await waitText(page, '#members', `${other} — connected, chat open`);
  }
  facts.members = await Promise.all(pages.map((p) => p.locator('#members li').allTextContents()));
  const [kim, lee, max] = pages as [Page, Page, Page];
  await kim.fill('#chat-input', 'hello room');
  await kim.press('#chat-input', 'Enter');
  await lee.fill('#chat-input', 'hi from lee');
  await lee.press('#chat-input', 'Enter');
  for (const page of [lee, max]) await waitText(page, '#messages', 'kim: hello room');
  for (const page of [kim, max]) await waitText(page, '#messages', 'lee: hi from lee');
  facts.messages = await Promise.all(pages.map((p) => messages(p)));
  // Video tiles: each page shows its own picture and decodes the two others'.
  for (const page of pages) {
    await page.waitForFunction(() => [...document.querySelectorAll('#tiles video')].filter((v: any) => v.videoWidth > 0).length >= 3);
  }
  facts.tiles = await Promise.all(
    pages.map((p) =>
      p.evaluate(() =>
        [...document.querySelectorAll('#tiles figure:not([hidden])')]
          .filter((f: any) => f.querySelector('video').videoWidth > 0)
          .map((f: any) => f.querySelector('figcaption').textContent)
          .sort(),
      ),
    ),
  );
  facts.layout = await kim.evaluate(() => ({ viewport: innerWidth, scrollWidth: document.documentElement.scrollWidth }));
  // max leaves: the others see him go, and keep their own connection.
  await max.click('#leave-room');
  for (const page of [kim, lee]) await waitText(page, '#messages', 'max left the room.');
  facts.afterLeave = await Promise.all([kim, lee, max].map((p) => p.locator('#members li').allTextContents()));
  await kim.fill('#chat-input', 'still here');
  await kim.press('#chat-input', 'Enter');
  await waitText(lee, '#messages', 'kim: still here');
  facts.maxNotice = await text(max, '#notice');
});

await scenario('resume', async (facts, contexts) => {
  // ivy reaches the server through a loopback proxy that can cut her connection, as a
  // network drop does: no close frame, and new connections refused until it is back.
  const proxy = await TcpProxy.start(`ws://127.0.0.1:${port}/`);
  try {
    const ivy = await demo(await contexts(), 'ivy', undefined, proxy.url.replace('ws:', 'http:'));
    const jack = await demo(await contexts(), 'jack');
    await connectCall(ivy, jack, 'jack');
    proxy.down();
    await waitText(ivy, '#signaling', 'signaling: reconnecting…');
    await waitText(jack, '#notice', "ivy's connection to the server dropped");
    facts.cut = {
      ivy: { signaling: await text(ivy, '#signaling'), ...(await view(ivy)) },
      jack: { line: await text(jack, '#call-line'), ...(await view(jack)) },
    };
    // The data channel runs browser to browser: it goes on without the server.
    await jack.fill('#chat-input', 'can you hear me?');
    await jack.press('#chat-input', 'Enter');
    await waitText(ivy, '#messages', 'jack: can you hear me?');
    proxy.up();
    await waitText(ivy, '#signaling', 'signaling: connected');
    await waitText(jack, '#notice', 'ivy is back.');
    facts.back = { ivy: await view(ivy), jack: { line: await text(jack, '#call-line'), ...(await view(jack)) } };
    await ivy.fill('#chat-input', 'back again');
    await ivy.press('#chat-input', 'Enter');
    await waitText(jack, '#messages', 'ivy: back again');
    facts.messages = { ivy: await messages(ivy), jack: await messages(jack) };
    // The server kept the call too: ivy's hang-up reaches jack as the end of this call.
    await ivy.click('#hang-up');
    await waitText(jack, '#notice', 'ivy left the call.');
    facts.hungUp = await view(jack);
    facts.attempts = proxy.attempts.length;
  } finally {
    await proxy.close();
  }
});

// Last, as it stops the server: the page tells a person the server went away.
await scenario('server-stops', async (facts, contexts) => {
  const hank = await demo(await contexts(), 'hank');
  server.kill('SIGTERM');
  await waitText(hank, '#signaling', 'signaling: reconnecting…');
  await waitText(hank, '#notice', 'Reconnecting in');
  facts.hank = { signaling: await text(hank, '#signaling'), notice: await text(hank, '#notice') };
});

await browser.close();
fixture.stop(true);
listing.proc.kill('SIGTERM');
stun.close();
server.kill('SIGTERM');
await server.exited;
