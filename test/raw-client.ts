import net from 'node:net';

/**
 * A WebSocket client on a raw TCP socket, for what a browser client cannot do: stop
 * reading (backpressure), never answer pings (a dead peer), or ignore a close frame.
 */
export class RawClient {
  readonly socket: net.Socket;
  private buffer: Buffer = Buffer.alloc(0);
  readonly texts: string[] = [];
  closeCode: number | undefined;
  ended: Promise<void>;
  /** Answer pings with pongs (a live peer). */
  answerPings = true;
  /** When each ping arrived (performance.now()). */
  readonly pings: number[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async connect(url: string, headers: Record<string, string> = {}): Promise<RawClient> {
    const { port, pathname, search, hostname } = new URL(url);
    const path = pathname + search;
    const socket = net.connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
    const client = new RawClient(socket);
    let head = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        const status = head.subarray(0, head.indexOf('\r\n')).toString();
        if (!status.includes(' 101 ')) return reject(new Error(`upgrade refused: ${status}`));
        client.feed(head.subarray(end + 4));
        socket.on('data', (c: Buffer) => client.feed(c));
        resolve();
      };
      socket.on('data', onData);
    });
    return client;
  }

  /** Send one masked text frame (or a close frame with `code`). */
  send(text: string) {
    this.socket.write(frame(0x1, Buffer.from(text)));
  }

  sendJson(msg: unknown) {
    this.send(JSON.stringify(msg));
  }

  /** Stop reading from the kernel: the server's sends pile up (backpressure). */
  pause() {
    this.socket.pause();
  }

  destroy() {
    this.socket.destroy();
  }

  private feed(chunk: Buffer) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      if (this.buffer.length < 2) return;
      const op = this.buffer[0]! & 0x0f;
      let len = this.buffer[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buffer.length < 4) return;
        len = this.buffer.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buffer.length < 10) return;
        len = Number(this.buffer.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buffer.length < off + len) return;
      const payload = this.buffer.subarray(off, off + len);
      this.buffer = this.buffer.subarray(off + len);
      if (op === 0x1) this.texts.push(payload.toString());
      else if (op === 0x8) this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      else if (op === 0x9) {
        this.pings.push(performance.now());
        if (this.answerPings) this.socket.write(frame(0xa, payload));
      }
    }
  }
}

function frame(op: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + len);
  out[0] = 0x80 | op;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = [0x12, 0x34, 0x56, 0x78];
  out.set(mask, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}
