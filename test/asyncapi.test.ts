import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import asyncApiSchema from '@asyncapi/specs/schemas/3.0.0-without-$id.json';
import Ajv from 'ajv';
import fc from 'fast-check';
import * as v from 'valibot';
import { ClientMessage } from '../src/protocol/client.ts';
import { CLOSE_CODES, ERRORS, LOGIN_FAILURES } from '../src/protocol/errors.ts';
import { ServerMessage } from '../src/protocol/server.ts';
import { GARBAGE, INVALID_CLIENT_MESSAGES, VALID_CLIENT_MESSAGES } from './corpus.ts';
import { Client, type Json, loggedIn, startServer, type TestServer } from './helpers.ts';
import { RawClient } from './raw-client.ts';

/**
 * The AsyncAPI document at GET /asyncapi.json is generated from the valibot schemas. These
 * tests prove it is a valid AsyncAPI 3.0 document, that its JSON Schemas accept exactly
 * what the validators accept, that it describes what the server really sends, and that it
 * and docs/protocol.md name the same messages.
 */

let srv: TestServer;
let doc: Json;
beforeAll(async () => {
  srv = await startServer({ maxConnectionsPerIp: 0, discovery: true, graceMs: 2000, stun: ['stun:127.0.0.1:3478'] });
  const res = await fetch(`${srv.http}/asyncapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/json');
  doc = (await res.json()) as Json;
});
afterAll(() => srv.stop());

const ajv = new Ajv({ allErrors: true, strict: false });
const typesOf = (schema: { options: ReadonlyArray<{ entries: { type: { literal: string } } }> }) => [
  ...new Set(schema.options.map((o) => o.entries.type.literal)),
];

/** Follow a local `$ref` (`#/a/b`) in the document. */
function resolve(ref: string): unknown {
  expect(ref.startsWith('#/')).toBe(true);
  return ref
    .slice(2)
    .split('/')
    .reduce<any>((node, key) => node?.[key.replaceAll('~1', '/').replaceAll('~0', '~')], doc);
}

/** The payloads of an operation's messages, as one JSON Schema (`oneOf`). */
function operationSchema(operation: string, strict = false): object {
  const refs: Array<{ $ref: string }> = doc.operations[operation].messages;
  const payloads = refs.map((r) => structuredClone((resolve((resolve(r.$ref) as Json).$ref) as Json).payload));
  // Strict: the server sends no field the document does not name.
  if (strict) for (const p of payloads) for (const s of p.oneOf ?? [p]) s.additionalProperties = false;
  return { oneOf: payloads };
}

describe('GET /asyncapi.json', () => {
  test('is a valid AsyncAPI 3.0 document whose every $ref resolves', () => {
    const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(asyncApiSchema);
    const valid = validate(doc);
    expect(valid ? [] : validate.errors).toEqual([]);
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === 'object') {
        for (const [k, value] of Object.entries(node)) k === '$ref' ? refs.push(value as string) : walk(value);
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(30);
    for (const ref of refs) expect(resolve(ref), ref).toBeDefined();
    // Operation messages must be ones their channel carries.
    for (const op of Object.values<Json>(doc.operations)) {
      for (const m of [...op.messages, ...(op.reply?.messages ?? [])]) expect(m.$ref).toStartWith(`${op.channel.$ref}/messages/`);
    }
  });

  test('names this server, the version, and is cached between requests', async () => {
    expect(doc.asyncapi).toBe('3.0.0');
    expect(doc.info.version).toBe((await srv.health()).version);
    expect(doc.servers.signalbox).toEqual({ host: new URL(srv.http).host, protocol: 'ws', pathname: '/' });
    const again = await (await fetch(`${srv.http}/asyncapi.json`)).text();
    expect(again).toBe(JSON.stringify(doc));
  });

  test('carries every client and server message type, error code, login failure and close code', () => {
    const messages = Object.values<Json>(doc.channels.signaling.messages).map((m) => resolve(m.$ref) as Json);
    const names = (dir: string) => Object.keys(doc.components.messages).filter((k) => k.startsWith(dir)).map((k) => k.slice(dir.length));
    expect(names('client.').sort()).toEqual(typesOf(ClientMessage).sort());
    expect(names('server.').sort()).toEqual(typesOf(ServerMessage).sort());
    expect(messages.length).toBe(typesOf(ClientMessage).length + typesOf(ServerMessage).length);
    const error = doc.components.messages['server.error'];
    expect(error['x-error-codes']).toEqual(ERRORS);
    expect(error.payload.properties.code.enum.sort()).toEqual(Object.keys(ERRORS).sort());
    for (const code of Object.keys(ERRORS)) expect(error.description).toContain(`\`${code}\``);
    expect(doc.components.messages['server.login']['x-login-failures']).toEqual(LOGIN_FAILURES);
    expect(Object.keys(doc.channels.signaling['x-close-codes'])).toEqual(Object.keys(CLOSE_CODES));
    for (const code of Object.keys(CLOSE_CODES)) expect(doc.channels.signaling.description).toContain(`- ${code} `);
  });
});

describe('the document and the validators agree on client messages', () => {
  let isValid: (x: unknown) => boolean;
  beforeAll(() => {
    const validate = ajv.compile(operationSchema('send'));
    isValid = (x) => validate(x) as boolean;
  });
  const agree = (x: unknown) => expect({ x, document: isValid(x) }).toEqual({ x, document: v.is(ClientMessage, x) });

  test('valid messages of every type are valid in both', () => {
    const types = new Set(VALID_CLIENT_MESSAGES.map((m) => (m as Json).type));
    expect([...types].sort()).toEqual(typesOf(ClientMessage).sort());
    for (const m of VALID_CLIENT_MESSAGES) {
      expect(v.is(ClientMessage, m)).toBe(true);
      agree(m);
    }
  });

  test('invalid messages are invalid in both', () => {
    for (const m of INVALID_CLIENT_MESSAGES) {
      expect(v.is(ClientMessage, m)).toBe(false);
      agree(m);
    }
  });

  test('the garbage corpus: every frame that parses as JSON is refused by both', () => {
    let checked = 0;
    for (const [, frame] of GARBAGE) {
      if (typeof frame !== 'string') continue;
      let data: unknown;
      try {
        data = JSON.parse(frame);
      } catch {
        continue;
      }
      agree(data);
      // Only the one "before login" case is a well-formed message.
      if (v.is(ClientMessage, data)) expect(data).toMatchObject({ type: 'offer' });
      checked++;
    }
    expect(checked).toBeGreaterThan(15);
  });

  test('generated messages: the document accepts exactly what valibot accepts', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 70 }),
      fc.string({ unit: 'binary', maxLength: 70 }),
      fc.string({ unit: fc.constantFrom('a', '😀', '\u0000', '\u007f', '\u0085', '\ud800', '\udc00', ' '), maxLength: 140 }),
      fc.constantFrom('', 'alice', '😀'.repeat(64), '😀'.repeat(64) + 'x', '😀'.repeat(100), 'x'.repeat(128), 'x'.repeat(129), 'q3Zg-_x1q3Zg-_x1q3Zg-_', 'to ken'),
    );
    const value = fc.oneof(
      { weight: 4, arbitrary: text },
      fc.constantFrom(null, true, false, 0, 1, 1.5, -1, 100, 101, 1e300, {}, [], { type: 'offer', sdp: 'v=0' }),
      fc.integer({ min: -5, max: 200 }),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const message = fc.record(
      {
        type: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...typesOf(ClientMessage)) }, value),
        name: value,
        room: value,
        offer: value,
        answer: value,
        candidate: value,
        resumable: value,
        resume: value,
        cursor: value,
        limit: value,
        watch: value,
      },
      { requiredKeys: [] },
    );
    let accepted = 0;
    fc.assert(
      fc.property(message, (m) => {
        const wire = JSON.parse(JSON.stringify(m));
        const valid = v.is(ClientMessage, wire);
        if (valid) accepted++;
        return isValid(wire) === valid;
      }),
      { numRuns: 5000, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
    );
    // The generator must reach both sides, or the property proves little.
    expect(accepted).toBeGreaterThan(50);
  });
});

describe('the document describes what the server sends', () => {
  test('every frame of a conversation that reaches every server message type matches it, with no unnamed field', async () => {
    const validate = ajv.compile(operationSchema('receive', true));
    const [a, b, c] = (await loggedIn(srv.url, 'doc-a', 'doc-b', 'doc-c')) as [Client, Client, Client];
    c.send({ type: 'list', watch: true });
    await c.nextOfType('users');
    a.send({ type: 'offer', name: 'doc-b', offer: { type: 'offer', sdp: 'v=0' } });
    await b.nextOfType('offer');
    b.send({ type: 'answer', name: 'doc-a', answer: { type: 'answer', sdp: 'v=0' } });
    await a.nextOfType('answer');
    a.send({ type: 'candidate', name: 'doc-b', candidate: null });
    await b.nextOfType('candidate');
    c.send({ type: 'offer', name: 'doc-a', offer: 'sdp' }); // busy
    await c.nextOfType('error');
    c.send({ type: 'dance' }); // unknown_type
    await c.nextOfType('error');
    c.send({ type: 'list', limit: 0 }); // invalid_message with field
    await c.nextOfType('error');
    a.send({ type: 'leave', name: 'doc-b' });
    await b.nextOfType('leave');
    for (const x of [a, b]) {
      x.send({ type: 'join', room: 'doc-room' });
      await x.nextOfType('joined');
    }
    await a.nextOfType('peer-joined');
    const x = await Client.connect(srv.url);
    x.send({ type: 'login', name: 'doc-a' }); // name_taken
    await x.nextOfType('login');
    x.close();

    // A resumable user drops and comes back: peer-disconnected, peer-reconnected, resume.
    const raw = await RawClient.connect(srv.url);
    raw.sendJson({ type: 'login', name: 'doc-r', resumable: true });
    while (raw.texts.length === 0) await Bun.sleep(5);
    const { resume } = JSON.parse(raw.texts[0]!);
    raw.sendJson({ type: 'join', room: 'doc-room' });
    await a.nextOfType('peer-joined');
    raw.destroy();
    await a.nextOfType('peer-disconnected');
    const back = await Client.connect(srv.url);
    back.send({ type: 'login', name: 'doc-r', resume });
    await back.nextOfType('joined');
    await a.nextOfType('peer-reconnected');
    back.send({ type: 'leave-room', room: 'doc-room' });
    await back.nextOfType('left');
    await a.nextOfType('peer-left');
    await back.close(1000);
    await c.nextOfType('presence');

    const frames = [a, b, c, x, back].flatMap((client) => client.log).concat(raw.texts.map((t) => JSON.parse(t)));
    expect(new Set(frames.map((f) => f.type))).toEqual(new Set(typesOf(ServerMessage)));
    expect(frames.some((f) => f.type === 'login' && f.success && f.iceServers && f.resume)).toBe(true);
    for (const frame of frames) {
      validate(frame);
      expect({ frame, errors: validate.errors ?? null }).toEqual({ frame, errors: null });
      expect(v.is(ServerMessage, frame)).toBe(true);
    }
    for (const client of [a, b, c]) client.close();
  });
});

describe('docs/protocol.md names the same messages', () => {
  const protocol = Bun.file(new URL('../docs/protocol.md', import.meta.url)).text();
  /** First-column `type`s of the tables in the section headed `heading`. */
  async function tableTypes(heading: string): Promise<string[]> {
    const text = await protocol;
    const start = text.indexOf(`\n## ${heading}\n`);
    expect(start).toBeGreaterThan(-1);
    const section = text.slice(start + 1).split('\n## ')[0]!;
    return [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]!);
  }
  test('every client message in "Client → server", and no other', async () => {
    expect([...new Set(await tableTypes('Client → server'))].sort()).toEqual(typesOf(ClientMessage).sort());
  });
  test('every server message in "Server → client", and no other', async () => {
    expect([...new Set(await tableTypes('Server → client'))].sort()).toEqual(typesOf(ServerMessage).sort());
  });
  test('the document is mentioned', async () => {
    expect(await protocol).toContain('/asyncapi.json');
  });
});
