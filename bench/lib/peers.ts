/**
 * The servers compared, and how each is started. `{port}` is replaced with a free port.
 * To try another command line for one peer, set BENCH_CMD_<ID> (e.g.
 * `BENCH_CMD_SIGNALBOX="bun --cpu-prof src/main.ts --port {port} --host 127.0.0.1"`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DialectName } from './dialect.ts';

export type PeerId = 'signalbox' | 'signalbox-b' | 'signalbox-cluster' | 'floor' | 'seed' | 'peerjs' | 'hono-helper' | 'bun-native';
export type ScenarioId = 'throughput' | 'fixed-rate' | 'handshakes' | 'idle' | 'capacity' | 'cold-start' | 'capacity-cluster';

export interface Peer {
  id: PeerId;
  label: string;
  dialect: DialectName;
  argv: string[];
  /** Path a probe connects to, to know the server is up (`{n}` is a throwaway id). */
  probePath: string;
  scenarios: ScenarioId[];
  version: string;
  /** What a reader must know to compare this peer's figures. */
  notes: string;
  /**
   * A cluster: this many processes of `argv` (each on its own port), sharing one
   * redis-server started for the run (`{redis}`, `{prefix}`, `{node}` are filled in).
   */
  nodes?: number;
}

const ALL: ScenarioId[] = ['throughput', 'fixed-rate', 'handshakes', 'idle', 'capacity', 'cold-start'];

/**
 * signalbox's flags for benchmarking: limits off (0 = unlimited) and quiet logs. Flags the
 * build does not know yet are left out (an unknown flag makes signalbox exit with 2), so
 * the harness works before and after the hardening work lands.
 */
export function signalboxFlags(helpText: string): { flags: string[]; missing: string[] } {
  const wanted: Array<[string, string]> = [
    ['--log-level', 'warn'],
    ['--max-connections', '0'],
    ['--max-connections-per-ip', '0'],
    ['--max-users', '0'],
    ['--rate', '0'],
  ];
  const flags: string[] = [];
  const missing: string[] = [];
  for (const [flag, value] of wanted) {
    if (new RegExp(`^\\s+${flag}\\b`, 'm').test(helpText)) flags.push(flag, value);
    else missing.push(flag);
  }
  return { flags, missing };
}

const version = (path: string): string => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')).version as string;
  } catch {
    return '?';
  }
};

const redisVersion = (): string =>
  /v=(\S+)/.exec(Bun.which('redis-server') ? Bun.spawnSync(['redis-server', '--version']).stdout.toString() : '')?.[1] ?? 'not installed';

export interface PeerSetup {
  root: string;
  bun: string;
  node: string;
  /** The compiled executable, if built; otherwise signalbox runs from source. */
  exe: string | null;
}

export function createPeers({ root, bun, node, exe }: PeerSetup): { peers: Peer[]; notes: string[] } {
  const notes: string[] = [];
  const signalboxBase = exe !== null && existsSync(exe) ? [exe] : [bun, join(root, 'src/main.ts')];
  const help = Bun.spawnSync([...signalboxBase, '--help']).stdout.toString();
  const { flags, missing } = signalboxFlags(help);
  if (missing.length > 0) notes.push(`signalbox does not have ${missing.join(', ')} yet: run without them`);
  const bunVersion = Bun.spawnSync([bun, '--version']).stdout.toString().trim();
  const nodeVersion = Bun.spawnSync([node, '--version']).stdout.toString().trim();
  const bench = join(root, 'bench');

  const peers: Peer[] = [
    {
      id: 'signalbox',
      label: 'signalbox',
      dialect: 'seed',
      argv: [...signalboxBase, '--port', '{port}', '--host', '127.0.0.1', ...flags],
      probePath: '/',
      scenarios: ALL,
      version: `${version(join(root, 'package.json'))} (${signalboxBase.length === 1 ? 'compiled' : 'from source'}, Bun ${bunVersion})`,
      notes: 'validates every message, keeps call state, answers every refusal',
    },
    {
      id: 'signalbox-cluster',
      label: 'signalbox, 2 nodes + Redis',
      dialect: 'seed',
      argv: [
        ...signalboxBase, '--port', '{port}', '--host', '127.0.0.1', ...flags,
        '--redis', '{redis}', '--redis-prefix', '{prefix}', '--node-id', '{node}',
      ],
      probePath: '/',
      scenarios: ['throughput', 'fixed-rate', 'handshakes', 'capacity-cluster'],
      version: `${version(join(root, 'package.json'))} (${signalboxBase.length === 1 ? 'compiled' : 'from source'}), redis-server ${redisVersion()}`,
      notes:
        'two signalbox processes on two ports sharing one redis-server, every pair split across them (caller on node 1, callee on node 2): each message goes node 1 → PUBLISH → Redis → node 2; both nodes and Redis share the server CPU',
      nodes: 2,
    },
    {
      id: 'floor',
      label: 'Bun floor',
      dialect: 'seed',
      argv: [bun, join(bench, 'peers/bun-floor.ts'), '{port}'],
      probePath: '/',
      scenarios: ALL,
      version: `Bun ${bunVersion}`,
      notes: 'no validation, no call state: parse, publish',
    },
    {
      id: 'seed',
      label: 'seed (Node+ws)',
      dialect: 'seed',
      argv: [node, join(bench, 'peers/seed-server.cjs'), '{port}'],
      probePath: '/',
      scenarios: ALL,
      version: `ws ${version(join(bench, 'node_modules/ws/package.json'))}, Node ${nodeVersion}`,
      notes: 'logs every message to stdout (here /dev/null); answers and candidates carry no name',
    },
    {
      id: 'peerjs',
      label: 'PeerJS server',
      dialect: 'peerjs',
      argv: [node, join(bench, 'peers/peerjs-server.mjs'), '{port}'],
      probePath: '/peerjs?key=peerjs&id={n}&token=t',
      scenarios: ALL,
      version: `peer ${version(join(bench, 'node_modules/peer/package.json'))}, Node ${nodeVersion}`,
      notes: 'PeerJS protocol: logs in by URL (no login round trip), stamps src',
    },
    {
      id: 'hono-helper',
      label: "Hono's upgradeWebSocket",
      dialect: 'seed',
      argv: [bun, join(bench, 'peers/upgrade-hono-helper.ts'), '{port}'],
      probePath: '/',
      scenarios: ['idle'],
      version: `Bun ${bunVersion}`,
      notes: 'login only; upgrade style A (hono/bun helper owns the events)',
    },
    {
      id: 'bun-native',
      label: 'Hono route + server.upgrade',
      dialect: 'seed',
      argv: [bun, join(bench, 'peers/upgrade-bun-native.ts'), '{port}'],
      probePath: '/',
      scenarios: ['idle'],
      version: `Bun ${bunVersion}`,
      notes: "login only; upgrade style B (signalbox's: Bun's handlers own the socket)",
    },
  ];
  // An A/B slot: BENCH_CMD_SIGNALBOX_B="path/to/other/signalbox --port {port} ..." runs a
  // second build beside the first, interleaved, so a change is judged on the same minute's noise.
  const b = process.env.BENCH_CMD_SIGNALBOX_B;
  if (b) {
    peers.splice(1, 0, { ...peers[0]!, id: 'signalbox-b', label: 'signalbox B', argv: [], version: 'B build', notes: `B: ${b}` });
  }
  for (const p of peers) {
    const override = process.env[`BENCH_CMD_${p.id.toUpperCase().replaceAll('-', '_')}`];
    if (override) {
      p.argv = override.trim().split(/\s+/);
      p.version += ' (custom command)';
      notes.push(`${p.id} started as: ${override}`);
    }
  }
  return { peers, notes };
}
