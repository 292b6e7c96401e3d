import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { CLIENT_MARK, renderDemoModule, SOURCE, TARGET } from '../deploy/demo-page.ts';
import { parseCli } from '../src/config.ts';
import { DEMO_CSP, DEMO_HTML } from '../src/demo/page.ts';
import type { ClientErrorCode } from '../src/client/index.ts';
import { CLOSE_CODES, ERRORS, type ErrorCode, LOGIN_FAILURES, type LoginFailure } from '../src/protocol/errors.ts';
import { Client, startServer, type TestServer } from './helpers.ts';

/** The call page without a browser: embedding, words, headers and the switch. test/e2e/ runs it for real. */
const html = readFileSync(SOURCE, 'utf8');
/** The inline scripts of the page as served: signalbox/client, then the page's own. */
/** The client's own reasons for a rejected promise; the type check fails when one is missing here. */
type ClientOwn = Exclude<ClientErrorCode, ErrorCode | LoginFailure>;
const CLIENT_OWN = ['closed', 'connect_failed', 'send_queue_full', 'timeout'] as const satisfies readonly ClientOwn[];
const everyClientCode: Exclude<ClientOwn, (typeof CLIENT_OWN)[number]> extends never ? true : never = true;
const scripts = [...DEMO_HTML.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
const block = (re: RegExp) => {
  const m = re.exec(html);
  if (m === null) throw new Error(`no ${re} in the page`);
  return m[1]!;
};

describe('the call page', () => {
  test('src/demo/page.ts is generated from src/demo/index.html and src/client/ (else run `make demo-page`)', async () => {
    expect(readFileSync(TARGET, 'utf8')).toBe(await renderDemoModule(html));
  });

  test('signals through the inlined signalbox/client, not a WebSocket of its own', () => {
    expect(html.split(CLIENT_MARK)).toHaveLength(2);
    expect(scripts).toHaveLength(2);
    expect(scripts[0]).toContain('globalThis.signalbox=');
    expect(scripts[1]).toContain('signalbox.createClient(');
    expect(scripts[1]).not.toContain('WebSocket(');
    // The policy allows exactly these two scripts.
    expect(DEMO_CSP.match(/'sha256-/g)).toHaveLength(3); // two scripts, one style
  });

  test('has words for every error code, login failure and close code the server sends, and no stale ones', () => {
    const words = JSON.parse(block(/<script type="application\/json" id="words">([\s\S]*?)<\/script>/));
    expect(Object.keys(words.errors).sort()).toEqual(Object.keys(ERRORS).sort());
    expect(Object.keys(words.loginFailures).sort()).toEqual(Object.keys(LOGIN_FAILURES).sort());
    expect(Object.keys(words.closeCodes).sort()).toEqual(Object.keys(CLOSE_CODES).sort());
    expect(everyClientCode).toBe(true);
    expect(Object.keys(words.clientErrors).sort()).toEqual([...CLIENT_OWN]);
  });

  test('its scripts parse, and it loads nothing from anywhere else', () => {
    for (const script of scripts) expect(() => new Function(script)).not.toThrow();
    expect(DEMO_HTML).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
  });

  test('--no-demo and SIGNALBOX_DEMO turn it off; it is on by default', () => {
    const demo = (argv: string[], env: Record<string, string> = {}) => {
      const r = parseCli(argv, env);
      if (r.kind !== 'run') throw new Error(r.kind);
      return r.config.demo;
    };
    expect(demo([])).toBe(true);
    expect(demo(['--no-demo'])).toBe(false);
    expect(demo([], { SIGNALBOX_DEMO: 'false' })).toBe(false);
    expect(demo(['--demo'], { SIGNALBOX_DEMO: 'false' })).toBe(true);
    expect(() => parseCli(['--demo=maybe'])).toThrow('invalid --demo: must be true or false');
  });
});

describe('GET /', () => {
  let on: TestServer;
  let off: TestServer;
  beforeAll(async () => {
    on = await startServer();
    off = await startServer({ demo: false });
  });
  afterAll(async () => {
    await on.stop();
    await off.stop();
  });

  test('serves the page with a policy that runs only its own code', async () => {
    const res = await fetch(`${on.http}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(res.headers.get('content-security-policy')).toBe(DEMO_CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe(DEMO_HTML);
  });

  test('with --no-demo, answers the short text instead', async () => {
    const res = await fetch(`${off.http}/`);
    expect(res.headers.get('content-type')).toStartWith('text/plain');
    const body = await res.text();
    expect(body).toStartWith(`signalbox ${(await off.health()).version}: a WebRTC signaling server.`);
    expect(body).not.toContain('<');
  });

  test('the WebSocket at the same URL still works with the page on', async () => {
    const c = await Client.connect(on.url);
    await c.login('page-and-socket');
    c.close();
  });
});
