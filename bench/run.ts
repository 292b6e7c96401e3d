/**
 * The benchmark harness: every scenario against every server, side by side, in one run.
 *
 *   bun bench/run.ts [--quick] [--runs N] [--peers a,b] [--scenarios x,y] [--no-docs]
 *                    [--from-source] [--render]
 *
 * Servers run pinned to one CPU (BENCH_SERVER_CPU, default 1), this generator to the other
 * (BENCH_GENERATOR_CPU, default 0). Each (scenario, server, run) gets a fresh server
 * process. Prints a progress line per run on stderr, then one JSON line per scenario and
 * server (medians and spread) and the tables on stdout, and rewrites the generated part of
 * docs/benchmarks.md and docs/benchmarks.svg (unless --no-docs or a partial selection),
 * keeping every run in docs/benchmarks-runs.jsonl. --render redraws the docs from that file
 * without running anything; --from-source runs signalbox from src/ instead of dist/.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { DIALECTS } from './lib/dialect.ts';
import { createPeers, type Peer, type ScenarioId } from './lib/peers.ts';
import { GENERATOR_CPU, loadAverage, pinSelf, SERVER_CPU, startServer } from './lib/proc.ts';
import { judge, markdownTables, type RunRecord, summarize, svgChart } from './lib/report.ts';
import { capacity } from './scenarios/capacity.ts';
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
const scenarios = (option('--scenarios')?.split(',') ?? ALL_SCENARIOS) as ScenarioId[];
const fromSource = flag('--from-source');
const render = flag('--render');

const exe = join(root, 'dist/signalbox');
const { peers: allPeers, notes: setupNotes } = createPeers({
  root,
  bun: process.execPath,
  node: Bun.which('node') ?? 'node',
  exe: fromSource ? null : exe,
});
const peerIds = option('--peers')?.split(',');
const peers = peerIds ? allPeers.filter((p) => peerIds.includes(p.id)) : allPeers;
const partial = peerIds !== undefined || option('--scenarios') !== undefined;
const writeDocs = render || (!flag('--no-docs') && !partial);

for (const s of scenarios) if (!ALL_SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);
if (!render && !existsSync(join(root, 'bench/node_modules/ws'))) throw new Error('run `make bench` (it installs bench/ dependencies)');
if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error('--runs must be 1..20');

if (!render) pinSelf();
const log = (s: string) => process.stderr.write(`${s}\n`);
log(`bench: ${runs} run(s), ${quick ? 'quick' : 'full'}; servers on CPU ${SERVER_CPU}, generator on CPU ${GENERATOR_CPU}`);
for (const n of setupNotes) log(`bench: ${n}`);

async function runOne(peer: Peer, scenario: ScenarioId, run: number): Promise<ScenarioResult> {
  if (scenario === 'cold-start') return coldStart(peer, { runs: quick ? 10 : 20 });
  const server = await startServer(peer.argv, { probePath: peer.probePath, cwd: root });
  const dialect = DIALECTS[peer.dialect];
  const ctx: ScenarioContext = {
    peer,
    server,
    dialect,
    target: { host: '127.0.0.1', port: server.port, dialect },
    tag: `r${run}${scenario[0]}${Date.now().toString(36)}`,
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
      } as Record<string, (c: ScenarioContext) => Promise<ScenarioResult>>
    )[scenario]!(ctx);
    if (server.proc.exitCode !== null) {
      const err = (server as unknown as { stderr: string }).stderr.trim().split('\n').slice(-3).join(' / ');
      (result.notes ??= []).push(`the server exited (${server.proc.exitCode}) during the run: ${err}`);
    }
    return result;
  } finally {
    await server.stop();
  }
}

const runsPath = join(root, 'docs/benchmarks-runs.jsonl');
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
for (let run = 1; run <= runs; run++) {
  for (const scenario of scenarios) {
    for (const peer of peers) {
      if (!peer.scenarios.includes(scenario)) continue;
      const load = loadAverage();
      let result: ScenarioResult;
      try {
        result = await runOne(peer, scenario, run);
      } catch (e) {
        result = { figures: {}, notes: [`failed: ${String((e as Error).message ?? e).slice(0, 300)}`] };
      }
      const rec: RunRecord = { scenario, peer: peer.id, run, figures: result.figures, notes: result.notes ?? [], load };
      records.push(rec);
      log(`${scenario.padEnd(11)} ${peer.id.padEnd(11)} run ${run}: ${JSON.stringify(rec.figures)}${rec.notes.length ? ` ${rec.notes.join('; ')}` : ''}`);
    }
  }
}
meta = {
  command: process.env.BENCH_COMMAND ?? `bun bench/run.ts ${args.join(' ')}`.trim(),
  runs,
  quick,
  elapsed: Math.round((performance.now() - started) / 1000),
  date: new Date().toISOString().slice(0, 10),
};
}

const summaries = summarize(records.filter((r) => Object.keys(r.figures).length > 0));
for (const s of summaries) console.log(JSON.stringify(s));
const tables = markdownTables(summaries, peers);
const verdicts = judge(summaries);
const verdictTable = [
  '| target | measured | met |',
  '|---|---|---|',
  ...verdicts.map((v) => `| ${v.target} | ${v.measured} | ${v.met === null ? 'not measured' : v.met ? 'yes' : '**no**'} |`),
].join('\n');
console.log(`\n${tables}\n### Targets\n\n${verdictTable}\n`);

const failures = records.filter((r) => Object.keys(r.figures).length === 0);
log(`bench: done in ${meta.elapsed} s${failures.length ? `, ${failures.length} run(s) failed` : ''}`);

if (writeDocs) {
  const { command, elapsed } = meta;
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const machine = [
    `- Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${kernel}; servers pinned to CPU ${SERVER_CPU}, generator to CPU ${GENERATOR_CPU}.`,
    `- Command: \`${command}\` (${meta.runs} run${meta.runs > 1 ? 's' : ''} of each, ${meta.quick ? 'quick sizes' : 'full sizes'}, ${elapsed} s in all); load average at the start of the runs: ${Math.min(...records.map((r) => r.load))}–${Math.max(...records.map((r) => r.load))}.`,
    `- Date: ${meta.date}.`,
    ...peers.map((p) => `- ${p.label}: ${p.version}; ${p.notes}.`),
    ...setupNotes.map((n) => `- Note: ${n}.`),
  ].join('\n');
  const block = [
    '<!-- results: generated by bench/run.ts; everything between these markers is rewritten -->',
    machine,
    '',
    'Figures are medians over the runs; `±` is half the range between the fastest and the slowest run, relative to the median. CPU columns are fractions of one core over the measured window ("others" is everything else on the machine).',
    '',
    '![benchmark chart](benchmarks.svg)',
    '',
    tables,
    '### Targets',
    '',
    verdictTable,
    '<!-- /results -->',
  ].join('\n');
  const path = join(root, 'docs/benchmarks.md');
  const doc = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\n<!-- results --><!-- /results -->\n';
  const next = doc.replace(/<!-- results[\s\S]*?<!-- \/results -->/, block);
  writeFileSync(path, next);
  writeFileSync(join(root, 'docs/benchmarks.svg'), svgChart(summaries, records, peers));
  if (!render) writeFileSync(runsPath, `${[{ meta }, ...records].map((r) => JSON.stringify(r)).join('\n')}\n`);
  log('bench: wrote docs/benchmarks.md, docs/benchmarks.svg, docs/benchmarks-runs.jsonl');
}
process.exit(0);
