/**
 * Combine runs into medians, judge the targets, and render the table, the SVG chart and
 * the generated part of docs/benchmarks.md.
 */
import type { Peer, PeerId, ScenarioId } from './peers.ts';
import { median, round, spread } from './stats.ts';

export interface RunRecord {
  scenario: ScenarioId;
  peer: PeerId;
  run: number;
  figures: Record<string, number>;
  notes: string[];
  load: number;
}

export interface Summary {
  scenario: ScenarioId;
  peer: PeerId;
  runs: number;
  median: Record<string, number>;
  /** (max - min) / median per figure, over the runs. */
  spread: Record<string, number>;
  notes: string[];
}

export function summarize(records: RunRecord[]): Summary[] {
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) {
    const k = `${r.scenario}\u0000${r.peer}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    const keys = Object.keys(rs[0]!.figures);
    const med: Record<string, number> = {};
    const spr: Record<string, number> = {};
    for (const k of keys) {
      const xs = rs.map((r) => r.figures[k] ?? Number.NaN);
      med[k] = round(median(xs), 3);
      spr[k] = round(spread(xs), 2);
    }
    const notes = [...new Set(rs.flatMap((r) => r.notes))];
    return { scenario: rs[0]!.scenario, peer: rs[0]!.peer, runs: rs.length, median: med, spread: spr, notes };
  });
}

// The columns each scenario's table shows: [figure, heading, show spread].
export const COLUMNS: Record<ScenarioId, Array<[string, string, boolean]>> = {
  throughput: [
    ['msgPerSec', 'msg/s', true],
    ['msgPerCpuSec', 'msg per server CPU-s', true],
    ['p50Ms', 'p50 ms', false],
    ['p99Ms', 'p99 ms', true],
    ['serverCpu', 'server CPU', false],
    ['redisCpu', 'of which Redis', false],
    ['generatorCpu', 'generator CPU', false],
    ['otherCpu', 'others CPU', false],
  ],
  'fixed-rate': [
    ['delivered', 'delivered', false],
    ['p50Ms', 'p50 ms', true],
    ['p99Ms', 'p99 ms', true],
    ['maxMs', 'max ms', true],
    ['serverCpu', 'server CPU', false],
    ['redisCpu', 'of which Redis', false],
    ['otherCpu', 'others CPU', false],
  ],
  handshakes: [
    ['callsPerSec', 'calls/s', true],
    ['p50Ms', 'p50 ms', false],
    ['p99Ms', 'p99 ms', true],
    ['serverCpu', 'server CPU', false],
    ['redisCpu', 'of which Redis', false],
    ['generatorCpu', 'generator CPU', false],
    ['otherCpu', 'others CPU', false],
    ['failed', 'failed', false],
  ],
  idle: [
    ['connections', 'connections', false],
    ['rssBeforeMB', 'RSS before MB', false],
    ['rssAfterMB', 'RSS after MB', false],
    ['kbPerConn', 'KB/conn', true],
    ['connectPerSec', 'logins/s', false],
  ],
  capacity: [
    ['fdLimit', 'fd limit', false],
    ['held', 'held', false],
    ['rssMB', 'RSS MB', false],
    ['kbPerConn', 'KB/conn', false],
    ['rampSec', 'ramp s', false],
    ['freshCallP50Ms', 'fresh call p50 ms', true],
    ['freshCallMaxMs', 'fresh call max ms', false],
  ],
  'capacity-cluster': [
    ['nodes', 'nodes', false],
    ['held', 'held', true],
    ['usersOnNodes', 'users (nodes say)', false],
    ['heldCalls', 'calls across nodes', false],
    ['dropped', 'dropped', false],
    ['loginSec', 'login s', true],
    ['loginsPerSec', 'logins/s', false],
    ['nodesRssMB', 'nodes RSS MB', true],
    ['redisRssMB', 'Redis RSS MB', true],
    ['kbPerConn', 'KB/conn (nodes)', true],
    ['kbPerConnWithRedis', 'KB/conn (+Redis)', false],
    ['rampOtherCpu', 'others CPU (ramp)', false],
  ],
  'cold-start': [
    ['medianMs', 'median ms', true],
    ['p90Ms', 'p90 ms', false],
    ['minMs', 'min ms', false],
    ['sizeMB', 'size MB', false],
  ],
};

/** A second table for a scenario with more to say than fits one. */
export const MORE: Partial<Record<ScenarioId, { title: string; cols: Array<[string, string, boolean]> }>> = {
  'capacity-cluster': {
    title: 'While all are held (20 s): fresh cross-node calls, responsiveness, and what Redis does',
    cols: [
      ['freshCallP50Ms', 'fresh call p50 ms', true],
      ['freshCallP90Ms', 'p90 ms', true],
      ['freshCallMaxMs', 'max ms', true],
      ['nodeHealthzP99Ms', 'node /healthz p99 ms', true],
      ['redisPingP99Ms', 'Redis PING p99 ms', true],
      ['holdRedisCpu', 'Redis CPU', true],
      ['holdRedisCpuPeak', 'Redis peak', false],
      ['holdNodesCpu', 'nodes CPU', true],
      ['holdNodesCpuPeak', 'nodes peak', false],
      ['holdHoldersCpu', 'holders CPU', false],
      ['holdOtherCpu', 'others CPU', false],
      ['redisOpsPerSec', 'Redis cmds/s', true],
      ['refreshPerSec', 'EVALSHA/s', false],
      ['evalshaUsec', 'µs per EVALSHA', false],
    ],
  },
};

export const TITLES: Record<ScenarioId, string> = {
  throughput: 'Throughput: 50 pairs, 32 candidates in flight per sender',
  'fixed-rate': 'Fixed rate: 5,000 msg/s over 50 pairs (latency from when each message was due)',
  handshakes: 'Handshakes: full calls by fresh pairs, 16 at a time',
  idle: 'Idle: logged-in connections doing nothing',
  capacity: 'Capacity: one server process up to its open-file limit',
  'capacity-cluster': 'Capacity across processes: signalbox nodes sharing one redis-server',
  'cold-start': 'Cold start: exec to first accepted WebSocket (20 starts per run)',
};

const fmt = (x: number | undefined): string => {
  if (x === undefined || !Number.isFinite(x)) return '–';
  if (Math.abs(x) >= 10_000) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 100) return String(Math.round(x));
  return String(round(x, 2));
};

export function markdownTables(summaries: Summary[], peers: Peer[]): string {
  const out: string[] = [];
  for (const scenario of Object.keys(COLUMNS) as ScenarioId[]) {
    const rows = summaries.filter((s) => s.scenario === scenario);
    if (rows.length === 0) continue;
    const cols = COLUMNS[scenario].filter(([k]) => rows.some((r) => r.median[k] !== undefined));
    out.push(`### ${TITLES[scenario]}`, '');
    const bound = rows.some((r) => r.median.serverCpu !== undefined);
    out.push(`| server | ${cols.map(([, h]) => h).join(' | ')} | runs |${bound ? ' limited by |' : ''}`);
    out.push(`|---|${cols.map(() => '---:').join('|')}|---:|${bound ? '---|' : ''}`);
    for (const r of rows) {
      const label = peers.find((p) => p.id === r.peer)?.label ?? r.peer;
      const cells = cols.map(([k, , withSpread]) => {
        const v = fmt(r.median[k]);
        const s = r.spread[k];
        return withSpread && r.runs > 1 && s !== undefined && Number.isFinite(s) ? `${v} ±${Math.round(s * 50)}%` : v;
      });
      out.push(`| ${label} | ${cells.join(' | ')} | ${r.runs} |${bound ? ` ${limitedBy(r.median)} |` : ''}`);
    }
    const more = MORE[scenario];
    if (more !== undefined) {
      out.push('', `#### ${more.title}`, '');
      out.push(`| server | ${more.cols.map(([, h]) => h).join(' | ')} |`);
      out.push(`|---|${more.cols.map(() => '---:').join('|')}|`);
      for (const r of rows) {
        const label = peers.find((p) => p.id === r.peer)?.label ?? r.peer;
        const cells = more.cols.map(([k, , withSpread]) => {
          const v = fmt(r.median[k]);
          const s = r.spread[k];
          return withSpread && r.runs > 1 && s !== undefined && Number.isFinite(s) ? `${v} ±${Math.round(s * 50)}%` : v;
        });
        out.push(`| ${label} | ${cells.join(' | ')} |`);
      }
    }
    const notes = rows.flatMap((r) => r.notes.map((n) => `${r.peer}: ${n}`));
    if (notes.length) out.push('', ...notes.slice(0, scenario === 'capacity-cluster' ? 16 : 8).map((n) => `- ${n}`));
    out.push('');
  }
  return out.join('\n');
}

/**
 * Which process held a run back, from the CPU each used: a process near a full core was the
 * limit; when neither was, other processes on the machine or the scenario's own pacing were.
 */
export function limitedBy(m: Record<string, number>): string {
  const { serverCpu = Number.NaN, generatorCpu = Number.NaN, otherCpu = 0 } = m;
  if (serverCpu >= 0.9) return 'server';
  if (generatorCpu >= 0.9) return '**generator**';
  if (otherCpu >= 0.3) return `shared CPU (others ${otherCpu})`;
  return 'pacing (neither saturated)';
}

export interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
}

/** The issue's targets, judged on the medians (null: not measured in this run). */
export function judge(summaries: Summary[]): Verdict[] {
  const get = (s: ScenarioId, p: PeerId, k: string) => summaries.find((x) => x.scenario === s && x.peer === p)?.median[k];
  const v: Verdict[] = [];
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const sb = get('throughput', 'signalbox', 'msgPerSec');
  const fl = get('throughput', 'floor', 'msgPerSec');
  const pj = get('throughput', 'peerjs', 'msgPerSec');
  const sd = get('throughput', 'seed', 'msgPerSec');
  const add = (target: string, ok: boolean | null, measured: string) => v.push({ target, measured, met: ok });
  add('throughput ≥ 85% of the Bun floor', sb && fl ? sb / fl >= 0.85 : null, sb && fl ? `${pct(sb / fl)} (${fmt(sb)} vs ${fmt(fl)} msg/s)` : '–');
  add('throughput ≥ 5x PeerJS', sb && pj ? sb / pj >= 5 : null, sb && pj ? `${round(sb / pj, 1)}x` : '–');
  add('throughput ≥ 5x the seed server', sb && sd ? sb / sd >= 5 : null, sb && sd ? `${round(sd ? sb / sd : 0, 1)}x` : '–');
  const p99 = get('throughput', 'signalbox', 'p99Ms');
  const p99f = get('throughput', 'floor', 'p99Ms');
  add('p99 under load ≤ 1.5x the floor', p99 && p99f ? p99 / p99f <= 1.5 : null, p99 && p99f ? `${round(p99 / p99f, 2)}x (${p99} vs ${p99f} ms)` : '–');
  const kb = get('idle', 'signalbox', 'kbPerConn');
  add('idle ≤ 4 KB per logged-in connection', kb !== undefined ? kb <= 4 : null, kb !== undefined ? `${kb} KB` : '–');
  const held = get('capacity', 'signalbox', 'held');
  const want = get('capacity', 'signalbox', 'target');
  const fresh = get('capacity', 'signalbox', 'freshCallMaxMs');
  const lim = get('capacity', 'signalbox', 'fdLimit');
  add(
    'one process holds up to its fd limit, fresh call < 50 ms',
    held !== undefined && want !== undefined && fresh !== undefined ? held >= want && fresh < 50 : null,
    held !== undefined ? `${fmt(held)} held (fd limit ${fmt(lim)}), fresh call max ${fresh} ms` : '–',
  );
  const cs = get('cold-start', 'signalbox', 'medianMs');
  add('cold start < 15 ms median', cs !== undefined ? cs < 15 : null, cs !== undefined ? `${cs} ms` : '–');
  const xs = get('throughput', 'signalbox-cluster', 'msgPerSec');
  const xp = get('throughput', 'signalbox-cluster', 'p99Ms');
  if (xs !== undefined && sb !== undefined) {
    add('cross-node relay measured beside one node (no target)', null, `${fmt(xs)} msg/s, p99 ${xp} ms: ${pct(xs / sb)} of one node's msg/s on the same one core`);
  }
  add('200,000 connections over several processes (cluster)', null, 'measured by `make bench-cluster`: see "Capacity across processes" below');
  return v;
}

/** The 200,000-connection target and what must hold while they are held. */
export function judgeCluster(summaries: Summary[]): Verdict[] {
  const found = summaries.find((x) => x.scenario === 'capacity-cluster')?.median;
  if (found === undefined) return [{ target: '200,000 connections over several processes', measured: 'no successful run', met: false }];
  const keys = ['target', 'nodes', 'held', 'usersOnNodes', 'heldCalls', 'dropped', 'freshCallP50Ms', 'freshCallP90Ms', 'freshCallMaxMs', 'freshCalls', 'kbPerConn', 'kbPerConnWithRedis'] as const;
  const m = Object.fromEntries(keys.map((k) => [k, found[k] ?? Number.NaN])) as Record<(typeof keys)[number], number>;
  const v: Verdict[] = [];
  v.push({
    target: `${fmt(m.target)} logged-in connections over ${m.nodes} signalbox processes sharing one Redis`,
    measured: `${fmt(m.held)} held (the nodes count ${fmt(m.usersOnNodes)} users), ${fmt(m.heldCalls)} of them in calls across nodes; ${fmt(m.dropped)} dropped while held`,
    met: m.held >= m.target && m.usersOnNodes >= m.target && m.dropped === 0,
  });
  v.push({
    target: 'a fresh pair on different processes completes a call in < 50 ms while all are held',
    measured: `p50 ${m.freshCallP50Ms} ms, p90 ${m.freshCallP90Ms} ms, max ${m.freshCallMaxMs} ms over ${m.freshCalls} calls spread over the hold`,
    met: m.freshCallMaxMs < 50,
  });
  v.push({
    target: 'idle memory per logged-in connection (single-process target: ≤ 4 KB)',
    measured: `${m.kbPerConn} KB in the nodes, ${m.kbPerConnWithRedis} KB with Redis's share`,
    met: m.kbPerConn <= 4,
  });
  return v;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A bar chart per headline figure, one bar per server, with the runs' min–max as a whisker. */
export function svgChart(summaries: Summary[], records: RunRecord[], peers: Peer[]): string {
  const panels: Array<[ScenarioId, string, string, boolean]> = [
    ['throughput', 'msgPerSec', 'Throughput (msg/s, higher is better)', true],
    ['throughput', 'p99Ms', 'p99 latency under that load (ms, lower is better)', false],
    ['handshakes', 'callsPerSec', 'Full calls by fresh pairs per second (higher is better; see "limited by")', true],
    ['idle', 'kbPerConn', 'Idle memory per logged-in connection (KB, lower is better)', false],
  ];
  const colors: Record<string, string> = {
    signalbox: '#1f6feb',
    'signalbox-b': '#58a6ff',
    'signalbox-cluster': '#0b3d91',
    floor: '#8b949e',
    seed: '#d29922',
    peerjs: '#a371f7',
    'hono-helper': '#3fb950',
    'bun-native': '#2ea043',
  };
  const W = 760;
  const labelW = 190;
  const barH = 18;
  const parts: string[] = [];
  let y = 10;
  for (const [scenario, key, title] of panels) {
    const rows = summaries.filter((s) => s.scenario === scenario && s.median[key] !== undefined);
    if (rows.length === 0) continue;
    const runsOf = (p: string) => records.filter((r) => r.scenario === scenario && r.peer === p).map((r) => r.figures[key]!);
    const max = Math.max(...rows.flatMap((r) => runsOf(r.peer)).filter(Number.isFinite), 1e-9);
    parts.push(`<text x="0" y="${y + 14}" font-weight="bold">${esc(title)}</text>`);
    y += 24;
    for (const r of rows) {
      const label = peers.find((p) => p.id === r.peer)?.label ?? r.peer;
      const scale = (W - labelW - 90) / max;
      const w = Math.max(1, r.median[key]! * scale);
      const xs = runsOf(r.peer).filter(Number.isFinite);
      parts.push(
        `<text x="${labelW - 6}" y="${y + 13}" text-anchor="end">${esc(label)}</text>`,
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colors[r.peer] ?? '#999'}"/>`,
      );
      if (xs.length > 1) {
        const x1 = labelW + Math.min(...xs) * scale;
        const x2 = labelW + Math.max(...xs) * scale;
        parts.push(`<line x1="${x1.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${y + barH / 2}" y2="${y + barH / 2}" stroke="#000" stroke-width="1.5"/>`);
      }
      // The value goes right of the bar or its whisker, whichever ends later.
      const end = Math.max(w, ...xs.map((x) => x * scale));
      parts.push(`<text x="${(labelW + end + 6).toFixed(1)}" y="${y + 13}">${esc(fmt(r.median[key]))}</text>`);
      y += barH + 6;
    }
    y += 14;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${y}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
