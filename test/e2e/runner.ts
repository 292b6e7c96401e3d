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

const server = Bun.spawn([exe, '--port', '0', '--host', '127.0.0.1', '--stun', stunUrl], { stdout: 'pipe', stderr: 'pipe' });
const serverLog: string[] = [];
const port = await new Promise<number>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no listening line: ${serverLog.join('')}`)), 10_000);
  (async () => {
    // Keep reading after the first line: a full pipe would stall the server.
    for await (const chunk of server.stdout.pipeThrough(new TextDecoderStream())) {
      serverLog.push(chunk);
      if (serverLog.length > 200) serverLog.shift();
      const m = /listening url=ws:\/\/[^:]+:(\d+)/.exec(serverLog.join(''));
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    }
  })();
});
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

/** Open the call page and log in as `name` (the page connects to the server on login). */
async function demo(ctx: BrowserContext, name: string, facts?: Facts): Promise<Page> {
  const page = await newPage(ctx, name);
  await page.goto(base);
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

// Last, as it stops the server: the page tells a person the server went away.
await scenario('server-stops', async (facts, contexts) => {
  const hank = await demo(await contexts(), 'hank');
  server.kill('SIGTERM');
  await waitText(hank, '#signaling', 'signaling: disconnected');
  facts.hank = { signaling: await text(hank, '#signaling'), notice: await text(hank, '#notice') };
});

await browser.close();
fixture.stop(true);
stun.close();
server.kill('SIGTERM');
await server.exited;
