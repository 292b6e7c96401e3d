/**
 * The floor: the least a Bun server can do and still route the seed protocol. No
 * validation, no call state, no error replies: parse, look at `type`, publish to the
 * recipient's topic. No Bun server that routes by name can be much faster.
 * Usage: bun bench/peers/bun-floor.ts <port>
 */
interface Data {
  name: string;
}

const server = Bun.serve<Data>({
  hostname: '127.0.0.1',
  port: Number(process.argv[2] ?? 9090),
  fetch(req, srv) {
    return srv.upgrade(req, { data: { name: '' } }) ? undefined : new Response('WebSocket only', { status: 426 });
  },
  websocket: {
    message(ws, text) {
      const m = JSON.parse(text as string);
      const from = ws.data.name;
      switch (m.type) {
        case 'login':
          ws.data.name = m.name;
          ws.subscribe(`user:${m.name}`);
          ws.send(JSON.stringify({ type: 'login', success: true, name: m.name }));
          break;
        case 'offer':
          server.publish(`user:${m.name}`, JSON.stringify({ type: 'offer', offer: m.offer, name: from }));
          break;
        case 'answer':
          server.publish(`user:${m.name}`, JSON.stringify({ type: 'answer', answer: m.answer, name: from }));
          break;
        case 'candidate':
          server.publish(`user:${m.name}`, JSON.stringify({ type: 'candidate', candidate: m.candidate, name: from }));
          break;
        case 'leave':
          server.publish(`user:${m.name}`, JSON.stringify({ type: 'leave', name: from }));
          break;
      }
    },
  },
});
