/**
 * Drives the real `peerjs` client in headless Chromium against signalbox: first one node,
 * then a two-node cluster on a real redis-server with each page on a different node.
 * peerjs.test.ts starts this script inside a network namespace that has only `lo`; it prints
 * one `@@e2e {json}` line of facts per scenario, and the test file judges them.
 *
 * Usage: bun test/e2e/peerjs-runner.ts
 */
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { startCluster, startServer, type TestServer } from '../helpers.ts';
import { TcpProxy } from '../proxy.ts';
import { CHROMIUM_ARGS } from './chromium.ts';

/** Every wait is bounded: generous, since other test suites share these two cores. */
const WAIT = 20_000;
/** Long enough that no reconnect here outlasts it. */
const GRACE_MS = 20_000;

type Facts = Record<string, unknown>;
// page.evaluate callbacks run in the browser; these stand-ins type them (see runner.ts).
declare const window: any;

const report = (scenario: string, facts: Facts, error?: string) => console.log(`@@e2e ${JSON.stringify({ scenario, facts, error })}`);

// The app's pages come from an origin of their own, as a real app's do, and load the client
// library from there: the /id request to signalbox is then a cross-origin fetch.
const root = join(import.meta.dir, '../..');
const app = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(req) {
    if (new URL(req.url).pathname === '/peerjs.min.js') {
      return new Response(Bun.file(join(root, 'node_modules/peerjs/dist/peerjs.min.js')), { headers: { 'content-type': 'text/javascript' } });
    }
    return new Response(Bun.file(join(import.meta.dir, 'peerjs-page.html')), { headers: { 'content-type': 'text/html' } });
  },
});

const browser: Browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

/** A page of the app in a browser context of its own (another person), its Peer pointed at `server`. */
async function open(label: string, server: string, id: string | null): Promise<Page> {
  const ctx = await browser.newContext();
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.message}`));
  await page.goto(`http://127.0.0.1:${app.port}/`);
  const { port } = new URL(server);
  // What a PeerJS app changes to move from `peer` to signalbox: host and port (path is `/` in both).
  // No ICE servers: there is no network here but loopback.
  await page.evaluate(([id, port]) => window.start(id, { host: '127.0.0.1', port: Number(port), path: '/', config: { iceServers: [] } }), [id, port] as const);
  return page;
}

const state = (page: Page) => page.evaluate(() => JSON.parse(JSON.stringify(window.state)));

/** Wait until `check(state)` holds on the page (polled in the page). */
async function until(page: Page, what: string, check: string) {
  try {
    await page.waitForFunction(`(() => { const s = window.state; return ${check}; })()`, undefined, { timeout: WAIT, polling: 50 });
  } catch {
    throw new Error(`${what}: never true (${check}); state: ${JSON.stringify(await state(page))}`);
  }
}

async function scenario(name: string, run: (facts: Facts) => Promise<void>) {
  const facts: Facts = {};
  pageErrors.length = 0;
  try {
    await run(facts);
    facts.pageErrors = [...pageErrors];
    report(name, facts);
  } catch (err) {
    report(name, { ...facts, pageErrors: [...pageErrors] }, String((err as Error).stack ?? err));
  }
}

/**
 * The scenarios, against `srv`. Page A reaches its node through a TCP proxy (so a test can
 * cut its network), page B reaches the other node directly.
 */
async function suite(label: string, srv: TestServer) {
  const [nodeA, nodeB] = [srv.url, srv.url]; // two nodes in a cluster, one otherwise
  const proxy = await TcpProxy.start(nodeA);
  const bId = `bob-${label}`;
  let a: Page | undefined;
  let b: Page | undefined;
  let aId = '';
  let firstConn = '';

  await scenario(`${label}: open`, async (facts) => {
    a = await open('a', proxy.url, null); // an id from GET /peerjs/id
    b = await open('b', nodeB, bId);
    await until(a, 'a opens', 's.opened.length === 1');
    await until(b, 'b opens', 's.opened.length === 1');
    aId = (await state(a)).opened[0];
    facts.a = aId;
    facts.b = (await state(b)).opened[0];
    facts.nodes = nodeA !== nodeB;
  });

  await scenario(`${label}: data`, async (facts) => {
    firstConn = await a!.evaluate((id) => window.connect(id), bId);
    await until(a!, 'a: connection open', `s.open.includes(${JSON.stringify(`${bId} ${firstConn}`)})`);
    await until(b!, 'b: connection open', `s.open.includes(${JSON.stringify(`${aId} ${firstConn}`)})`);
    await a!.evaluate((c) => window.send(c, 'hello from a'), firstConn);
    await b!.evaluate((c) => window.send(c, 'hello from b'), firstConn);
    await until(b!, 'b receives', 's.data.length === 1');
    await until(a!, 'a receives', 's.data.length === 1');
    facts.a = (await state(a!)).data;
    facts.b = (await state(b!)).data;
  });

  await scenario(`${label}: media`, async (facts) => {
    await a!.evaluate((id) => window.call(id), bId);
    await until(a!, 'a gets a stream', 's.streams === 1');
    await until(b!, 'b gets a stream', 's.streams === 1');
    for (const page of [a!, b!]) {
      const deadline = Date.now() + WAIT;
      while ((await page.evaluate(() => window.video())).frames === 0) {
        if (Date.now() > deadline) throw new Error(`no video frames decoded; state: ${JSON.stringify(await state(page))}`);
        await Bun.sleep(200);
      }
    }
    facts.a = await a!.evaluate(() => window.video());
    facts.b = await b!.evaluate(() => window.video());
  });

  await scenario(`${label}: reconnect`, async (facts) => {
    // The network under a's signaling socket drops (no close frame): the server keeps its session.
    proxy.down();
    await until(a!, 'a notices', 's.disconnected === 1');
    // Meanwhile b opens another connection to a: its offer waits for a.
    const second = await b!.evaluate((id) => window.connect(id), aId);
    // The id is still a's: another page (with its own random token) cannot take it.
    const thief = await open('thief', nodeB, aId);
    await until(thief, 'the thief is refused', 's.errors.length > 0');
    facts.thief = (await state(thief)).errors;
    // a comes back (in a cluster, on the other node) with the same id and token.
    proxy.retarget(nodeB);
    proxy.up();
    await a!.evaluate(() => window.reconnect());
    await until(a!, 'a reopens', 's.opened.length === 2');
    await until(a!, 'a: the waiting connection opens', `s.open.includes(${JSON.stringify(`${bId} ${second}`)})`);
    await until(b!, 'b: the waiting connection opens', `s.open.includes(${JSON.stringify(`${aId} ${second}`)})`);
    await b!.evaluate((c) => window.send(c, 'while you were away'), second);
    // The first connection never needed the server after it was set up.
    await a!.evaluate((c) => window.send(c, 'still here'), firstConn);
    await until(a!, 'a receives on the new connection', 's.data.length === 2');
    await until(b!, 'b receives on the old connection', 's.data.length === 2');
    const sa = await state(a!);
    facts.opened = sa.opened;
    facts.errors = sa.errors;
    facts.a = sa.data;
    facts.b = (await state(b!)).data;
  });

  await scenario(`${label}: destroy`, async (facts) => {
    await b!.evaluate(() => window.destroy());
    // Both data connections (a's and b's) close on a's side. (The call is left out: the
    // client's destroy() skips a connection when it closes several to one peer, so b's own
    // call stays up; reported as b's call state.)
    await until(a!, 'a sees the data connections close', `s.closed.filter((c) => c.startsWith(${JSON.stringify(`data ${bId} `)})).length === 2`);
    facts.closed = (await state(a!)).closed;
    facts.bCalls = await b!.evaluate(() => window.callStates());
    // The id is free at once: another page takes it (in a cluster, on the other node).
    const again = await open('b again', nodeA, bId);
    await until(again, 'the id opens again', 's.opened.length === 1 || s.errors.length > 0');
    facts.again = await state(again);
  });

  await proxy.close();
  for (const ctx of contexts.splice(0)) await ctx.close().catch(() => {});
}

const one = await startServer({ host: '127.0.0.1', graceMs: GRACE_MS });
await suite('one node', one);
await one.stop();

const cluster = await startCluster({ graceMs: GRACE_MS });
await suite('cluster', cluster);
await cluster.stop();

await browser.close();
app.stop(true);
process.exit(0);
