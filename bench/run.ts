/**
 * The benchmark harness: every scenario against every server, side by side, in one run.
 *
 *   bun bench/run.ts [--quick] [--runs N] [--peers a,b] [--scenarios x,y] [--no-docs]
 *                    [--from-source] [--render]
 *   bun bench/run.ts --cluster [--cluster-nodes 12] [--cluster-count 200000] [--cluster-no-calls]
 *                    [--cluster-args "--presence-ttl-ms 30000"] [--runs N] ...
 *
 * --cluster runs only the capacity across processes (scenario capacity-cluster: signalbox
 * processes sharing one redis-server hold 200,000 logged-in connections together) and
 * writes its own part of docs/benchmarks.md (between the cluster-results markers) and
 * docs/benchmarks-cluster-runs.jsonl; it is too heavy for the everyday run.
 *
 * Servers run pinned to one CPU (BENCH_SERVER_CPU, default 1), this generator to the other
 * (BENCH_GENERATOR_CPU, default 0). Each (scenario, server, run) gets a fresh server
 * process. Prints a progress line per run on stderr, then one JSON line per scenario and
 * server (medians and spread) and the tables on stdout, and rewrites the generated part of
 * docs/benchmarks.md and docs/benchmarks.svg (unless --no-docs or a partial selection),
 * keeping every run in docs/benchmarks-runs.jsonl. --render redraws the docs from that file
 * without running anything; --from-source runs signalbox from src/ instead of dist/.
 * A cluster peer (signalbox-cluster) gets a fresh redis-server and its nodes for each run,
 * all on the server CPU (BENCH_REDIS_CPU moves Redis).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { DIALECTS } from './lib/dialect.ts';
import { createPeers, type Peer, type ScenarioId } from './lib/peers.ts';
import { REDIS_CPU, startCluster } from './lib/cluster.ts';
import { GENERATOR_CPU, loadAverage, pinSelf, SERVER_CPU, startServer } from './lib/proc.ts';
import { judge, judgeCluster, markdownTables, type RunRecord, summarize, svgChart } from './lib/report.ts';
import { capacity, capacityCluster } from './scenarios/capacity.ts';
import { coldStart } from './scenarios/cold-start.ts';
import type { ScenarioContext, ScenarioResult } from './scenarios/context.ts';
import { fixedRate } from './scenarios/fixed-rate.ts';
import { handshakes } from './scenarios/handshakes.ts';
import { idle } from './scenarios/idle.ts';
import { throughput } from './scenarios/throughput.ts';

const root = join(import.meta.dir, '..');
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = flag('--quick');
const runs = Number(option('--runs') ?? (quick ? 1 : 3));
const ALL_SCENARIOS: ScenarioId[] = ['throughput', 'fixed-rate', 'handshakes', 'idle', 'capacity', 'cold-start'];
const KNOWN_SCENARIOS: ScenarioId[] = [...ALL_SCENARIOS, 'capacity-cluster'];
const clusterSuite = flag('--cluster');
const clusterNodes = Number(option('--cluster-nodes') ?? 12);
const clusterCount = Number(option('--cluster-count') ?? (quick ? 20_000 : 200_000));
/** Extra flags for every node of the capacity cluster (e.g. another --presence-ttl-ms). */
const clusterArgs = option('--cluster-args')?.trim().split(/\s+/) ?? [];
const clusterPairs = !flag('--cluster-no-calls');
const scenarios = (clusterSuite ? ['capacity-cluster'] : (option('--scenarios')?.split(',') ?? ALL_SCENARIOS)) as ScenarioId[];
const fromSource = flag('--from-source');
const render = flag('--render');

const exe = join(root, 'dist/signalbox');
const { peers: allPeers, notes: setupNotes } = createPeers({
  root,
  bun: process.execPath,
  node: Bun.which('node') ?? 'node',
  exe: fromSource ? null : exe,
});
const peerIds = clusterSuite ? ['signalbox-cluster'] : option('--peers')?.split(',');
const peers = peerIds ? allPeers.filter((p) => peerIds.includes(p.id)) : allPeers;
if (clusterSuite) {
  for (const p of peers) {
    p.label = `signalbox, ${clusterNodes} nodes + Redis`;
    p.notes = `${clusterNodes} signalbox processes on ${clusterNodes} ports sharing one redis-server (nodes and Redis on the server CPU, holder processes on the generator CPU); held connections are spread round-robin over the nodes${clusterPairs ? ' and paired into calls across nodes' : ''}${clusterArgs.length ? `; nodes run with ${clusterArgs.join(' ')}` : ''}`;
  }
}
const partial = !clusterSuite && (peerIds !== undefined || option('--scenarios') !== undefined);
const writeDocs = render || (!flag('--no-docs') && !partial);

for (const s of scenarios) if (!KNOWN_SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);
if (!Number.isInteger(clusterNodes) || clusterNodes < 2 || clusterNodes > 32) throw new Error('--cluster-nodes must be 2..32');
if (!Number.isInteger(clusterCount) || clusterCount < 100 || clusterCount > 400_000) throw new Error('--cluster-count must be 100..400000');
if (!render && !existsSync(join(root, 'bench/node_modules/ws'))) throw new Error('run `make bench` (it installs bench/ dependencies)');
if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error('--runs must be 1..20');

if (!render) pinSelf();
const log = (s: string) => process.stderr.write(`${s}\n`);
log(`bench: ${runs} run(s), ${quick ? 'quick' : 'full'}; servers on CPU ${SERVER_CPU}, generator on CPU ${GENERATOR_CPU}, cluster Redis on CPU ${REDIS_CPU}`);

/** How big a cluster a scenario needs (the peer's own size otherwise). */
const clusterSizes = (scenario: ScenarioId): { nodes?: number; extraArgs?: string[] } =>
  scenario === 'capacity-cluster' ? { nodes: clusterNodes, extraArgs: clusterArgs } : {};
for (const n of setupNotes) log(`bench: ${n}`);

async function runOne(peer: Peer, scenario: ScenarioId, run: number): Promise<ScenarioResult> {
  if (scenario === 'cold-start') return coldStart(peer, { runs: quick ? 10 : 20 });
  const tag = `r${run}${scenario[0]}${Date.now().toString(36)}`;
  // A cluster peer: a fresh redis-server and its nodes; a pair's callee sits on the second node.
  const cluster = peer.nodes ? await startCluster(peer, { cwd: root, tag, ...clusterSizes(scenario) }) : null;
  const servers = cluster?.servers ?? [await startServer(peer.argv, { probePath: peer.probePath, cwd: root })];
  const server = servers[0]!;
  const dialect = DIALECTS[peer.dialect];
  const target = { host: '127.0.0.1', port: server.port, dialect };
  const ctx: ScenarioContext = {
    peer,
    server,
    servers,
    redis: cluster?.redis,
    serverPids: [...servers.map((s) => s.pid), ...(cluster ? [cluster.redis.pid] : [])],
    dialect,
    target,
    callee: { ...target, port: servers.at(-1)!.port },
    tag,
    quick,
    root,
  };
  try {
    const result = await (
      {
        throughput,
        'fixed-rate': fixedRate,
        handshakes,
        idle,
        capacity: (c: ScenarioContext) => capacity(c),
        'capacity-cluster': (c: ScenarioContext) => capacityCluster(c, { count: clusterCount, pairs: clusterPairs }),
      } as Record<string, (c: ScenarioContext) => Promise<ScenarioResult>>
    )[scenario]!(ctx);
    for (const s of servers) {
      if (s.proc.exitCode !== null) {
        const err = (s as unknown as { stderr: string }).stderr.trim().split('\n').slice(-3).join(' / ');
        (result.notes ??= []).push(`a server process exited (${s.proc.exitCode}) during the run: ${err}`);
      }
    }
    return result;
  } finally {
    if (cluster) await cluster.stop();
    else await server.stop();
  }
}

const runsPath = join(root, clusterSuite ? 'docs/benchmarks-cluster-runs.jsonl' : 'docs/benchmarks-runs.jsonl');
interface Meta {
  command: string;
  runs: number;
  quick: boolean;
  elapsed: number;
  date: string;
}
let records: RunRecord[] = [];
let meta: Meta;
const started = performance.now();
if (render) {
  // Re-render the docs from the saved runs (after a change to the report, not to the code).
  const lines = readFileSync(runsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  meta = lines[0].meta as Meta;
  records = lines.slice(1) as RunRecord[];
} else {
// Runs are interleaved (every scenario and server once, then again) so that a noisy minute
// on this shared machine spreads over all servers instead of hitting one.
// The cluster suite is bounded in time as a whole: no run starts that could end past it
// (one run takes 2-4 minutes, at most ~5 with its ramp timeout).
const deadline = started + Number(option('--deadline-min') ?? (clusterSuite ? 14 : 60)) * 60_000;
const worstRunMs = clusterSuite ? 5 * 60_000 : 0;
for (let run = 1; run <= runs; run++) {
  if (run > 1 && performance.now() + worstRunMs > deadline) {
    log(`bench: stopping after ${run - 1} run(s): another could end past the deadline`);
    break;
  }
  for (const scenario of scenarios) {
    for (const peer of peers) {
      if (!peer.scenarios.includes(scenario)) continue;
      const load = loadAverage();
      let result: ScenarioResult;
      try {
        result = await runOne(peer, scenario, run);
      } catch (e) {
        result = { figures: {}, notes: [`failed: ${String((e as Error).message ?? e).slice(0, 800)}`] };
      }
      const notes = (result.notes ?? []).map((n) => (clusterSuite ? `run ${run}: ${n}` : n));
      const rec: RunRecord = { scenario, peer: peer.id, run, figures: result.figures, notes, load };
      records.push(rec);
      log(`${scenario.padEnd(11)} ${peer.id.padEnd(17)} run ${run}: ${JSON.stringify(rec.figures)}${rec.notes.length ? ` ${rec.notes.join('; ')}` : ''}`);
    }
  }
}
meta = {
  command: process.env.BENCH_COMMAND ?? `bun bench/run.ts ${args.join(' ')}`.trim(),
  runs: Math.max(0, ...records.map((r) => r.run)),
  quick,
  elapsed: Math.round((performance.now() - started) / 1000),
  date: new Date().toISOString().slice(0, 10),
};
}

const summaries = summarize(records.filter((r) => Object.keys(r.figures).length > 0));
for (const s of summaries) console.log(JSON.stringify(s));
const tables = markdownTables(summaries, peers);
const verdicts = clusterSuite ? judgeCluster(summaries) : judge(summaries);
const verdictTable = [
  '| target | measured | met |',
  '|---|---|---|',
  ...verdicts.map((v) => `| ${v.target} | ${v.measured} | ${v.met === null ? (v.measured === '–' ? 'not measured' : '–') : v.met ? 'yes' : '**no**'} |`),
].join('\n');
console.log(`\n${tables}\n### Targets\n\n${verdictTable}\n`);

const failures = records.filter((r) => Object.keys(r.figures).length === 0);
log(`bench: done in ${meta.elapsed} s${failures.length ? `, ${failures.length} run(s) failed` : ''}`);

if (writeDocs) {
  const { command, elapsed } = meta;
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const machine = [
    `- Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${kernel}; servers pinned to CPU ${SERVER_CPU}${clusterSuite ? ' (every signalbox node)' : ''}, cluster Redis to CPU ${REDIS_CPU}, generator${clusterSuite ? ' and holder processes' : ''} to CPU ${GENERATOR_CPU}.`,
    `- Command: \`${command}\` (${meta.runs} run${meta.runs > 1 ? 's' : ''} of each, ${meta.quick ? 'quick sizes' : 'full sizes'}, ${elapsed} s in all); load average at the start of the runs: ${Math.min(...records.map((r) => r.load))}–${Math.max(...records.map((r) => r.load))}.`,
    `- Date: ${meta.date}.`,
    ...peers.map((p) => `- ${p.label}: ${p.version}; ${p.notes}.`),
    ...setupNotes.map((n) => `- Note: ${n}.`),
  ].join('\n');
  const marker = clusterSuite ? 'cluster-results' : 'results';
  const block = [
    `<!-- ${marker}: generated by bench/run.ts${clusterSuite ? ' --cluster' : ''}; everything between these markers is rewritten -->`,
    machine,
    '',
    'Figures are medians over the runs; `±` is half the range between the fastest and the slowest run, relative to the median. CPU columns are fractions of one core over the measured window ("others" is everything else on the machine).',
    '',
    ...(clusterSuite ? [] : ['![benchmark chart](benchmarks.svg)', '']),
    tables,
    '### Targets',
    '',
    verdictTable,
    `<!-- /${marker} -->`,
  ].join('\n');
  const path = join(root, 'docs/benchmarks.md');
  const doc = existsSync(path) ? readFileSync(path, 'utf8') : `# Benchmarks\n\n<!-- ${marker} --><!-- /${marker} -->\n`;
  const re = new RegExp(`<!-- ${marker}[:\\s][\\s\\S]*?<!-- \\/${marker} -->`);
  if (!re.test(doc)) throw new Error(`docs/benchmarks.md has no <!-- ${marker} --> … <!-- /${marker} --> markers`);
  writeFileSync(path, doc.replace(re, block));
  if (!clusterSuite) writeFileSync(join(root, 'docs/benchmarks.svg'), svgChart(summaries, records, peers));
  if (!render) writeFileSync(runsPath, `${[{ meta }, ...records].map((r) => JSON.stringify(r)).join('\n')}\n`);
  log(`bench: wrote docs/benchmarks.md${clusterSuite ? '' : ', docs/benchmarks.svg'}, ${runsPath.slice(root.length + 1)}`);
}
process.exit(0);
