import { type ConversionConfig, type JsonSchema, toJsonSchema } from '@valibot/to-json-schema';
import { ClientMessage, type ClientType, CUSTOM_JSON_SCHEMAS } from './client.ts';
import { CLOSE_CODES, ERRORS, LOGIN_FAILURES } from './errors.ts';
import { NAME_PATTERN } from './names.ts';
import { ServerMessage } from './server.ts';

/**
 * The protocol as an AsyncAPI 3.0 document, generated from the valibot schemas that also
 * validate every frame, so the two cannot drift (test/asyncapi.test.ts proves they agree).
 * Served at `GET /asyncapi.json`; built on the first request, never at start-up.
 */

type ServerType = ServerMessage['type'];

// One line per message; the compiler demands a line for every type in both directions.
const CLIENT_SUMMARIES: Record<ClientType, string> = {
  login: 'Claim a name for this connection (optionally resumable, or resume a dropped session).',
  offer: 'Call a user (or renegotiate) and forward an SDP offer.',
  answer: 'Forward an SDP answer to the caller.',
  candidate: 'Forward an ICE candidate to the peer (null: end of candidates).',
  leave: 'Hang up: end the call with `name` (without `name`: the current call).',
  join: 'Join (or create) a room.',
  'leave-room': 'Leave a room.',
  list: 'With --discovery: one page of logged-in users; `watch` subscribes to presence.',
};

const SERVER_SUMMARIES: Record<ServerType, string> = {
  login: 'The reply to login: success with the name (and resume token, ICE servers), or a failure reason.',
  offer: 'Someone calls you; `name` is the caller as the server knows it.',
  answer: 'Your callee answered.',
  candidate: 'An ICE candidate from `name`.',
  leave: '`name` hung up, or its session ended.',
  error: 'A message of yours was refused; nothing was forwarded.',
  joined: 'You are in the room; `peers` are the other members (also sent after a resume).',
  left: 'You left the room.',
  'peer-joined': 'Someone joined a room you are in.',
  'peer-left': 'Someone left a room you are in, or their session ended.',
  'peer-disconnected': 'A partner or room member dropped and may resume within the grace period.',
  'peer-reconnected': 'They are back.',
  users: 'One page of `list`.',
  presence: 'With `list` `watch`: a user logged in or out.',
};

/** Request → reply pairs, as AsyncAPI operations with a `reply`. */
const REQUESTS = {
  login: ['login'],
  join: ['joined', 'error'],
  'leave-room': ['left', 'error'],
  list: ['users', 'error'],
} as const satisfies Partial<Record<ClientType, readonly ServerType[]>>;

const CONVERSION: ConversionConfig = {
  target: 'draft-07',
  errorMode: 'throw',
  // The two payload checks are `v.custom`: their JSON Schemas are declared beside them.
  overrideSchema: ({ valibotSchema }) => CUSTOM_JSON_SCHEMAS.get(valibotSchema) as JsonSchema | undefined,
  // JSON Schema has no regex flags; its `pattern` is read as Unicode-aware (ajv, and the
  // 2020-12 spec, use the `u` flag), which is what NAME_PATTERN's `u` means.
  overrideAction: ({ valibotAction, jsonSchema }) =>
    valibotAction.type === 'regex' && 'requirement' in valibotAction && valibotAction.requirement === NAME_PATTERN
      ? { ...jsonSchema, pattern: NAME_PATTERN.source }
      : undefined,
};

const typeOf = (schema: { entries: { type: { literal: string } } }) => schema.entries.type.literal;

/** The JSON Schema of each message `type`: one schema, or `oneOf` where a type has variants. */
function payloads(options: ReadonlyArray<Parameters<typeof toJsonSchema>[0] & { entries: { type: { literal: string } } }>) {
  const byType = new Map<string, JsonSchema[]>();
  for (const option of options) {
    const { $schema: _, ...schema } = toJsonSchema(option, CONVERSION);
    const list = byType.get(typeOf(option)) ?? [];
    list.push(schema);
    byType.set(typeOf(option), list);
  }
  return new Map([...byType].map(([type, list]) => [type, list.length === 1 ? list[0]! : { oneOf: list }]));
}

const bullets = (table: Record<string, string>) =>
  Object.entries(table)
    .map(([k, text]) => `- \`${k}\`: ${text}`)
    .join('\n');

export interface AsyncApiOptions {
  version: string;
}

export function createAsyncApi({ version }: AsyncApiOptions) {
  const channel = '#/channels/signaling';
  const ref = (key: string) => ({ $ref: `${channel}/messages/${key}` });
  const messages: Record<string, object> = {};

  for (const [type, payload] of payloads(ClientMessage.options)) {
    messages[`client.${type}`] = {
      name: type,
      title: `${type} (client → server)`,
      summary: CLIENT_SUMMARIES[type as ClientType],
      payload,
    };
  }
  for (const [type, payload] of payloads(ServerMessage.options)) {
    const extra =
      type === 'error'
        ? { description: `Error codes:\n${bullets(ERRORS)}`, 'x-error-codes': ERRORS }
        : type === 'login'
          ? { description: `Login failure reasons:\n${bullets(LOGIN_FAILURES)}`, 'x-login-failures': LOGIN_FAILURES }
          : {};
    messages[`server.${type}`] = {
      name: type,
      title: `${type} (server → client)`,
      summary: SERVER_SUMMARIES[type as ServerType],
      ...extra,
      payload,
    };
  }

  const closeCodes = Object.fromEntries(Object.entries(CLOSE_CODES).map(([code, [name, text]]) => [code, { name, description: text }]));
  const clientKeys = Object.keys(messages).filter((k) => k.startsWith('client.'));
  const serverKeys = Object.keys(messages).filter((k) => k.startsWith('server.'));

  const operations: Record<string, object> = {
    send: {
      action: 'send',
      title: 'Client → server',
      summary: 'Every message a client may send: one JSON object per text frame.',
      channel: { $ref: channel },
      messages: clientKeys.map(ref),
    },
    receive: {
      action: 'receive',
      title: 'Server → client',
      summary: 'Every message the server sends: one JSON object per text frame.',
      channel: { $ref: channel },
      messages: serverKeys.map(ref),
    },
  };
  for (const [request, replies] of Object.entries(REQUESTS)) {
    operations[request.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())] = {
      action: 'send',
      summary: `${request} and its reply (${replies.map((r) => `\`${r}\``).join(' or ')}).`,
      channel: { $ref: channel },
      messages: [ref(`client.${request}`)],
      reply: { channel: { $ref: channel }, messages: replies.map((r) => ref(`server.${r}`)) },
    };
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'signalbox',
      version,
      description:
        'A WebRTC signaling server speaking the seed tutorial\'s protocol over one WebSocket. ' +
        'Operations are written from a client\'s point of view: it sends the client messages and ' +
        'receives the server messages. Unknown extra fields are ignored, so payload schemas allow them. ' +
        'Name patterns are Unicode-aware (read them with the `u` flag). The prose reference is docs/protocol.md.',
    },
    defaultContentType: 'application/json',
    channels: {
      signaling: {
        address: '/',
        title: 'The signaling WebSocket',
        description:
          'JSON text frames in both directions. The server may close the connection with these codes:\n' +
          Object.entries(CLOSE_CODES)
            .map(([code, [name, text]]) => `- ${code} \`${name}\`: ${text}`)
            .join('\n'),
        messages: Object.fromEntries(Object.keys(messages).map((k) => [k, { $ref: `#/components/messages/${k}` }])),
        bindings: {
          ws: {
            bindingVersion: '0.1.0',
            query: {
              type: 'object',
              properties: {
                token: { type: 'string', description: 'With --auth-secret: an HS256 JWT whose `sub` is the name this connection may use.' },
              },
            },
          },
        },
        'x-close-codes': closeCodes,
      },
    },
    operations,
    components: { messages },
  };
}

export type AsyncApi = ReturnType<typeof createAsyncApi>;
