import { describe, expect, test } from 'bun:test';
import { MemoryConn, type MemoryConnOptions, MemoryTopics, type SocketLike, utf8Length } from '../src/adapter/memory-topics.ts';
import type { ConnState, Face } from '../src/signaling/types.ts';

/**
 * The in-memory topics behind the Deno adapter, on their own. A recording socket stands in
 * for a WebSocket here; the integration suite runs the real thing under Deno.
 */
class Socket implements SocketLike {
  readyState = 1;
  bufferedAmount = 0;
  readonly frames: string[] = [];
  closedWith: [number?, string?] | null = null;
  send(data: string) {
    if (this.readyState !== 1) throw new Error('readyState not OPEN');
    this.frames.push(data);
  }
  close(code?: number, reason?: string) {
    this.closedWith = [code, reason];
    this.readyState = 2;
  }
}

let nextId = 1;
function connect(topics: MemoryTopics, options?: MemoryConnOptions) {
  const socket = new Socket();
  const data: ConnState = {
    id: nextId++,
    ip: '127.0.0.1',
    face: {} as Face,
    identity: null,
    openedAt: 0,
    session: null,
    pending: false,
    tokens: 0,
    stamp: 0,
    strikes: 0,
  };
  return { socket, conn: new MemoryConn(data, socket, topics, options) };
}

describe('MemoryTopics', () => {
  test('publish reaches every subscriber of the topic and nobody else', () => {
    const topics = new MemoryTopics();
    const [a, b, c] = [connect(topics), connect(topics), connect(topics)];
    a.conn.subscribe('user:x');
    b.conn.subscribe('user:x');
    c.conn.subscribe('user:y');
    expect(topics.publish('user:x', 'hi')).toBe(4); // 2 bytes to each of 2 subscribers
    expect(a.socket.frames).toEqual(['hi']);
    expect(b.socket.frames).toEqual(['hi']);
    expect(c.socket.frames).toEqual([]);
  });

  test('publish to a topic nobody holds returns 0 (the user is offline)', () => {
    const topics = new MemoryTopics();
    expect(topics.publish('user:nobody', 'hi')).toBe(0);
    const a = connect(topics);
    a.conn.subscribe('user:a');
    a.conn.unsubscribe('user:a');
    expect(topics.publish('user:a', 'hi')).toBe(0);
    expect(a.socket.frames).toEqual([]);
  });

  test('a subscriber whose socket is no longer open counts as gone', () => {
    const topics = new MemoryTopics();
    const a = connect(topics);
    a.conn.subscribe('user:a');
    a.socket.readyState = 2; // closing: the close event has not arrived yet
    expect(topics.publish('user:a', 'hi')).toBe(0);
    expect(a.conn.send('hi')).toBe(0);
  });

  test('on close every topic the connection held is left, and emptied topics deleted', () => {
    const topics = new MemoryTopics();
    const [a, b] = [connect(topics), connect(topics)];
    a.conn.subscribe('user:a');
    a.conn.subscribe('room:1');
    b.conn.subscribe('room:1');
    expect(topics.size).toBe(2);
    a.conn.closed();
    expect(a.conn.topics.size).toBe(0);
    expect(topics.size).toBe(1);
    expect(topics.subscribers('user:a')).toBe(0);
    expect(topics.subscribers('room:1')).toBe(1);
    b.conn.closed();
    expect(topics.size).toBe(0);
  });

  test('a subscribe that arrives after the close leaves nothing behind', () => {
    const topics = new MemoryTopics();
    const a = connect(topics);
    a.conn.closed();
    a.conn.subscribe('user:late');
    expect(topics.size).toBe(0);
  });

  test('subscribing twice is one subscription; unsubscribing an unknown topic is harmless', () => {
    const topics = new MemoryTopics();
    const a = connect(topics);
    a.conn.subscribe('user:a');
    a.conn.subscribe('user:a');
    expect(topics.publish('user:a', 'x')).toBe(1);
    expect(a.socket.frames).toEqual(['x']);
    a.conn.unsubscribe('room:never');
    expect(topics.size).toBe(1);
  });

  test('send returns the UTF-8 bytes queued; close passes code and reason to the socket', () => {
    const topics = new MemoryTopics();
    const a = connect(topics);
    expect(a.conn.send('héllo')).toBe(6);
    a.conn.close(1001, 'bye');
    expect(a.socket.closedWith).toEqual([1001, 'bye']);
    expect(a.conn.send('late')).toBe(0);
  });

  test('a client that stops reading is dropped at the backpressure limit, once', () => {
    const topics = new MemoryTopics();
    const dropped: MemoryConn[] = [];
    const slow = connect(topics, { backpressureLimit: 10, onOverflow: (c) => dropped.push(c) });
    const other = connect(topics);
    slow.conn.subscribe('user:slow');
    slow.conn.subscribe('room:1');
    other.conn.subscribe('room:1');
    expect(topics.publish('user:slow', 'first')).toBe(5);
    slow.socket.bufferedAmount = 11; // the client stopped reading
    expect(topics.publish('room:1', 'hi')).toBe(2); // only `other` got it
    expect(slow.socket.closedWith).toEqual([1008, 'backpressure limit']);
    expect(dropped).toEqual([slow.conn]);
    expect(topics.subscribers('user:slow')).toBe(0);
    expect(topics.publish('user:slow', 'again')).toBe(0);
    expect(dropped).toHaveLength(1);
    expect(slow.socket.frames).toEqual(['first']);
    expect(other.socket.frames).toEqual(['hi']);
  });

  test('100,000 users come and go: nothing is left', () => {
    const topics = new MemoryTopics();
    for (let i = 0; i < 100_000; i++) {
      const a = connect(topics);
      a.conn.subscribe(`user:${i}`);
      a.conn.closed();
    }
    expect(topics.size).toBe(0);
  });
});

test('utf8Length agrees with TextEncoder', () => {
  const samples = ['', 'ascii', 'é', '€', '日本語', '😀', 'a😀b', '\ud800', '\udc00x', 'x\ud83d', '\u07ff\u0800\uffff'];
  for (const s of samples) expect([s, utf8Length(s)]).toEqual([s, new TextEncoder().encode(s).length]);
});
