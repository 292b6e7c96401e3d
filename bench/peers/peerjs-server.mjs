// The PeerJS server (`peer` from npm) with its defaults, except: loopback only, the port from
// argv, and no cap on concurrent clients (its default, 5,000, would end the idle and capacity
// scenarios early). Clients connect to /peerjs?key=peerjs&id=<id>&token=<token>.
import { PeerServer } from 'peer';

const port = Number(process.argv[2] ?? 9000);
PeerServer({ host: '127.0.0.1', port, concurrent_limit: 1_000_000 });
