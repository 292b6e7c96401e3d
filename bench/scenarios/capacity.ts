/**
 * Capacity: as many logged-in connections as one server process holds (its open-file
 * limit, printed), held by helper generator processes (each may open at most `ulimit -n`
 * files too), then fresh pairs' full calls while they are held.
 *
 * Across processes (`capacityCluster`): signalbox processes sharing one namespace through
 * one redis-server hold 200,000 logged-in connections together. Holders spread their
 * connections round-robin over the nodes and put each two consecutive ones in a call, so
 * every held call crosses between processes; fresh pairs call from the first node to the
 * last while it is all held, spaced over several presence-refresh periods (a refresh
 * burst cannot hide between them). Redis's CPU, commands per second by kind, and memory
 * are read over the hold.
 */
import { join } from 'node:path';
import { RedisClient, type Subprocess } from 'bun';
import { cpuSeconds, fdLimit, GENERATOR_CPU, machineBusySeconds, openFiles, otherProcesses, rssBytes, type RunningServer, track } from '../lib/proc.ts';
import { callOnce, createAddressPool } from '../lib/session.ts';
import { median, percentileOf, round } from '../lib/stats.ts';
import type { HolderJob } from '../holder.ts';
import type { ScenarioContext, ScenarioResult } from './context.ts';

/** Connections per holder process: under its own open-file limit, with room for Bun's own files. */
const PER_HOLDER = 18_200;
/** Source addresses per holder (127.0.x.y): a few hundred connections each. */
const ADDRS_PER_HOLDER = 64;

interface Holders {
  procs: Subprocess<'pipe', 'pipe', 'inherit'>[];
  next(i: number, timeoutMs: number): Promise<any>;
  kill(): Promise<void>;
}

function spawnHolders(ctx: ScenarioContext, servers: RunningServer[], want: number, extra: Partial<HolderJob>): Holders {
  const holders = Math.ceil(want / PER_HOLDER);
  const per = Math.ceil(want / holders);
  const procs = Array.from({ length: holders }, (_, k) => {
    const job: HolderJob = {
      host: ctx.target.host,
      ports: servers.map((s) => s.port),
      dialect: ctx.dialect.name,
      count: Math.min(per, want - k * per),
      prefix: `${ctx.tag}h${k}x`,
      addrBase: 2 + k * ADDRS_PER_HOLDER,
      ...extra,
    };
    return track(
      Bun.spawn(['taskset', '-c', GENERATOR_CPU, process.execPath, join(ctx.root, 'bench/holder.ts'), JSON.stringify(job)], {
        stdin: 'pipe',
        stdout: 'pipe',
        stderr: 'inherit',
      }),
    );
  });
  const readers = procs.map((p) =>
    (p.stdout as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>).getReader(),
  );
  const carry = procs.map(() => '');
  return {
    procs,
    async next(i, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      while (!carry[i]!.includes('\n')) {
        const r = await Promise.race([readers[i]!.read(), Bun.sleep(Math.max(0, deadline - performance.now())).then(() => null)]);
        if (r === null) throw new Error(`holder ${i} said nothing within ${timeoutMs} ms`);
        if (r.done) throw new Error(`holder ${i} exited early (${procs[i]!.exitCode})`);
        carry[i] += r.value;
      }
      const at = carry[i]!.indexOf('\n');
      const line = carry[i]!.slice(0, at);
      carry[i] = carry[i]!.slice(at + 1);
      return JSON.parse(line);
    },
    async kill() {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      await Promise.all(procs.map((p) => p.exited));
    },
  };
}

/**
 * Fresh full calls, caller on `servers[0]`, callee on the last server, `gapMs` apart.
 * With `slow`, a call over 50 ms is noted with when it started (ms into the series).
 */
async function freshCalls(ctx: ScenarioContext, servers: RunningServer[], n: number, gapMs: number, addrBase: number, notes: string[], slow = false) {
  const addr = createAddressPool(addrBase, 16);
  const caller = { ...ctx.target, port: servers[0]!.port };
  const callee = { ...ctx.target, port: servers.at(-1)!.port };
  const durations: number[] = [];
  const slowOnes: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    try {
      const steps: Record<string, number> = {};
      const ms = await callOnce(caller, callee, [`${ctx.tag}f${i}`, `${ctx.tag}g${i}`], addr, 5000, steps);
      durations.push(ms);
      if (ms > 50) slowOnes.push(`${Math.round(ms)} ms at +${Math.round(t - t0)} ms (${Object.entries(steps).filter(([, v]) => v >= 5).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    } catch (e) {
      notes.push(`fresh call failed: ${String((e as Error).message).slice(0, 200)}`);
      break;
    }
    await Bun.sleep(Math.max(0, gapMs - (performance.now() - t)));
  }
  if (slow && slowOnes.length) notes.push(`fresh calls over 50 ms: ${slowOnes.slice(0, 8).join(', ')}`);
  return durations;
}

/**
 * Responsiveness probes while everything is held: an HTTP GET /healthz to each node and a
 * PING to Redis every `everyMs`, timed. A slow answer from a node is its event loop (or
 * its CPU share) lagging; a slow PING is Redis.
 */
function probes(servers: RunningServer[], redisUrl: string, everyMs = 100) {
  const node: number[] = [];
  const redis: number[] = [];
  const client = new RedisClient(redisUrl);
  let stopped = false;
  const loop = async (f: () => Promise<unknown>, into: number[]) => {
    while (!stopped) {
      const t = performance.now();
      try {
        await f();
        into.push(performance.now() - t);
      } catch {
        into.push(Number.POSITIVE_INFINITY);
      }
      await Bun.sleep(Math.max(0, everyMs - (performance.now() - t)));
    }
  };
  let k = 0;
  const runs = [
    loop(() => fetch(`http://127.0.0.1:${servers[k++ % servers.length]!.port}/healthz`).then((r) => r.arrayBuffer()), node),
    loop(() => client.send('PING', []), redis),
  ];
  return async () => {
    stopped = true;
    await Promise.all(runs);
    client.close();
    const stat = (xs: number[]) => ({ p50: round(median(xs), 2), p99: round(percentileOf(xs, 0.99), 2), max: round(Math.max(...xs), 2) });
    return { node: stat(node), redis: stat(redis) };
  };
}

/** Peak CPU (cores) of each group over `windowMs` slices, sampled until stopped. */
function cpuPeaks(groups: Record<string, number[]>, windowMs = 500) {
  const peaks: Record<string, number> = Object.fromEntries(Object.keys(groups).map((k) => [k, 0]));
  let w = cpuWindow(groups);
  const timer = setInterval(() => {
    const u = w();
    for (const k of Object.keys(groups)) peaks[k] = Math.max(peaks[k]!, u[k]!);
    w = cpuWindow(groups);
  }, windowMs);
  return () => {
    clearInterval(timer);
    return peaks;
  };
}

export async function capacity(
  ctx: ScenarioContext,
  {
    servers = [ctx.server] as RunningServer[],
    /** Connections to open in all; default: every server up to its open-file limit. */
    count = undefined as number | undefined,
    reserve = 8,
    calls = 20,
  } = {},
): Promise<ScenarioResult> {
  const limit = fdLimit(servers[0]!.pid);
  const baseline = servers.reduce((n, s) => n + openFiles(s.pid), 0);
  const rss0 = servers.reduce((n, s) => n + rssBytes(s.pid), 0);
  const want = count ?? servers.length * limit - baseline - reserve * servers.length;
  const t0 = performance.now();
  const holders = spawnHolders(ctx, servers, want, {});
  const notes: string[] = [];
  try {
    const ready = await Promise.all(holders.procs.map((_, i) => holders.next(i, 240_000)));
    const rampSec = (performance.now() - t0) / 1000;
    const held = ready.reduce((n, r) => n + r.held, 0);
    for (const r of ready) if (r.failed) notes.push(`holder: ${r.failed} failed, e.g. ${r.errors.join(' | ')}`);
    await Bun.sleep(1000);
    const rss = servers.reduce((n, s) => n + rssBytes(s.pid), 0);
    const serverFiles = servers.reduce((n, s) => n + openFiles(s.pid), 0);

    // Fresh pairs' full calls while everything is held.
    const durations = await freshCalls(ctx, servers, calls, 0, 2 + holders.procs.length * ADDRS_PER_HOLDER, notes);
    for (const p of holders.procs) p.stdin.end();
    const done = await Promise.all(holders.procs.map((_, i) => holders.next(i, 20_000).catch(() => ({ dropped: Number.NaN }))));
    const dropped = done.reduce((n, r) => n + r.dropped, 0);
    if (dropped) notes.push(`${dropped} held connections were closed by the server while held`);
    return {
      figures: {
        fdLimit: limit,
        servers: servers.length,
        target: want,
        held,
        serverOpenFiles: serverFiles,
        rssMB: round(rss / 2 ** 20, 1),
        kbPerConn: round((rss - rss0) / held / 1024, 2),
        rampSec: round(rampSec, 1),
        freshCallP50Ms: round(median(durations), 2),
        freshCallMaxMs: round(durations.length ? Math.max(...durations) : Number.NaN, 2),
        freshCallP90Ms: round(percentileOf(durations, 0.9), 2),
        freshCalls: durations.length,
        dropped,
      },
      notes,
    };
  } finally {
    await holders.kill();
  }
}

export interface ClusterCapacityOptions {
  /** Connections to hold over all nodes (issue 8: 200,000). */
  count?: number;
  /** Put held connections in calls, two by two, across nodes. */
  pairs?: boolean;
  /** Logins in flight per holder: paces the ramp (the nodes and Redis share one core). */
  concurrency?: number;
  /** How long to watch everything held (Redis CPU and ops/s, fresh calls). */
  holdMs?: number;
  /** Fresh calls during the hold, evenly spaced. */
  calls?: number;
  /** Give up on the ramp (logins and calls) after this long. */
  rampTimeoutMs?: number;
}

/** Over a window: CPU (fractions of one core) of groups of processes, and of the rest of the machine. */
function cpuWindow(groups: Record<string, number[]>) {
  const t0 = performance.now();
  const sum = (pids: number[]) => pids.reduce((n, p) => n + (safe(() => cpuSeconds(p)) ?? 0), 0);
  const c0 = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, sum(pids)]));
  const m0 = machineBusySeconds();
  return () => {
    const secs = (performance.now() - t0) / 1000;
    const out: Record<string, number> = {};
    let ours = 0;
    for (const [k, pids] of Object.entries(groups)) {
      const used = sum(pids) - c0[k]!;
      ours += used;
      out[k] = round(used / secs, 2);
    }
    out.others = round(Math.max(0, (machineBusySeconds() - m0 - ours) / secs), 2);
    return out;
  };
}

const safe = <T>(f: () => T): T | undefined => {
  try {
    return f();
  } catch {
    return undefined;
  }
};

export async function capacityCluster(ctx: ScenarioContext, opts: ClusterCapacityOptions = {}): Promise<ScenarioResult> {
  const redis = ctx.redis;
  if (redis === undefined) throw new Error('capacity-cluster needs a cluster peer (its nodes share a redis-server)');
  const {
    count = ctx.quick ? 20_000 : 200_000,
    pairs = true,
    concurrency = 48,
    holdMs = ctx.quick ? 10_000 : 20_000,
    calls = ctx.quick ? 20 : 50,
    rampTimeoutMs = 240_000,
  } = opts;
  const { servers } = ctx;
  const nodePids = servers.map((s) => s.pid);
  const limit = fdLimit(servers[0]!.pid);
  const redisLimit = fdLimit(redis.pid);
  const redisMaxclients = Number(await infoConfig(redis.port, 'maxclients'));
  await Bun.sleep(500);
  const rssNodes0 = nodePids.reduce((n, p) => n + rssBytes(p), 0);
  const rssRedis0 = redis.rss();
  const notes: string[] = [];
  const t0 = performance.now();
  const holders = spawnHolders(ctx, servers, count, { pairs, concurrency, loginTimeoutMs: 30_000, maxLifetimeMs: rampTimeoutMs + holdMs + 120_000 });
  const holderPids = holders.procs.map((p) => p.pid);
  const rampCpu = cpuWindow({ nodes: nodePids, redis: [redis.pid], holders: holderPids, generator: [process.pid] });
  const stopTrace = trace(process.env.BENCH_TRACE, t0, { nodes: nodePids, redis: [redis.pid], holders: holderPids, generator: [process.pid] }, redis);
  try {
    // A process under test that dies (another user's `pkill redis-server` on this shared
    // machine did, once) ends the run at once, saying so, instead of at the timeout.
    const died = Promise.race([redis.exited, ...servers.map((s) => s.proc.exited.then(() => `node on port ${s.port} exited (${s.proc.signalCode ?? s.proc.exitCode})`))]).then((why) => {
      throw new Error(why);
    });
    died.catch(() => {});
    const ready = await Promise.race([Promise.all(holders.procs.map((_, i) => holders.next(i, rampTimeoutMs))), died]).catch(async (e) => {
      // Say how far it got: names Redis holds, what it was busy with, and the CPU since the start.
      const stats = await redis.commandStats();
      const keys = (await redis.info('keyspace')).db0 ?? 'no keys';
      const cpu = rampCpu();
      const top = Object.entries(stats)
        .sort((a, b) => b[1].calls - a[1].calls)
        .slice(0, 4)
        .map(([k, v]) => `${k} ${v.calls} calls ${round(v.usec / v.calls, 2)} µs each`);
      throw new Error(`${(e as Error).message}; Redis: ${keys}; since the start: ${top.join(', ')}; CPU nodes ${cpu.nodes}, Redis ${cpu.redis}, others ${cpu.others}`);
    });
    const rampSec = (performance.now() - t0) / 1000;
    const ramp = rampCpu();
    const held = ready.reduce((n, r) => n + r.held, 0);
    const heldCalls = ready.reduce((n, r) => n + r.calls, 0);
    const loginSec = Math.max(...ready.map((r) => r.ms)) / 1000;
    for (const r of ready) if (r.failed || r.callsFailed) notes.push(`holder: ${r.failed} logins and ${r.callsFailed} calls failed, e.g. ${r.errors.join(' | ')}`);

    // The hold: let the ramp's backlog drain, then watch a window of several refresh periods.
    await Bun.sleep(2000);
    const stats0 = await redis.commandStats();
    const hold = cpuWindow({ nodes: nodePids, redis: [redis.pid], holders: holderPids, generator: [process.pid] });
    const others = otherProcesses();
    const peaks = cpuPeaks({ nodes: nodePids, redis: [redis.pid] });
    const probing = probes(servers, redis.url);
    const h0 = performance.now();
    const durations = await freshCalls(ctx, servers, calls, holdMs / calls, 2 + holders.procs.length * ADDRS_PER_HOLDER, notes, true);
    await Bun.sleep(Math.max(0, holdMs - (performance.now() - h0)));
    const holdSecs = (performance.now() - h0) / 1000;
    const cpu = hold();
    const peak = peaks();
    const probed = await probing();
    const busiest = others([...nodePids, redis.pid, ...holderPids]);
    if (busiest.length) notes.push(`other processes during the hold (cores): ${busiest.join(', ')}`);
    const stats1 = await redis.commandStats();
    const rate = (cmd: string) => ((stats1[cmd]?.calls ?? 0) - (stats0[cmd]?.calls ?? 0)) / holdSecs;
    const usecPer = (cmd: string) => {
      const calls = (stats1[cmd]?.calls ?? 0) - (stats0[cmd]?.calls ?? 0);
      return calls > 0 ? ((stats1[cmd]?.usec ?? 0) - (stats0[cmd]?.usec ?? 0)) / calls : Number.NaN;
    };
    const totalOps = Object.keys(stats1).reduce((n, k) => n + rate(k), 0);
    const memory = await redis.info('memory');
    const keyspace = await redis.info('keyspace');
    const pubsub = await redis.info('stats');
    const rssNodes = nodePids.reduce((n, p) => n + rssBytes(p), 0);
    const rssRedis = redis.rss();
    // What the nodes themselves say they hold (not what the generators believe).
    const users = await Promise.all(
      servers.map((s) =>
        fetch(`http://127.0.0.1:${s.port}/healthz`)
          .then((r) => r.json() as Promise<{ users: number }>)
          .then((j) => j.users)
          .catch(() => Number.NaN),
      ),
    );
    const keys = Number(/keys=(\d+)/.exec(keyspace.db0 ?? '')?.[1] ?? Number.NaN);
    const top = Object.keys(stats1)
      .map((k) => [k, rate(k)] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([k, r]) => `${k} ${Math.round(r)}/s (${round(usecPer(k), 2)} µs each)`);
    notes.push(`Redis commands during the hold: ${top.join(', ')}`);

    for (const p of holders.procs) p.stdin.end();
    const done = await Promise.all(holders.procs.map((_, i) => holders.next(i, 30_000).catch(() => ({ dropped: Number.NaN, codes: {} }))));
    const dropped = done.reduce((n, r) => n + r.dropped, 0);
    const codes: Record<string, number> = {};
    for (const r of done) for (const [c, n] of Object.entries(r.codes ?? {})) codes[c] = (codes[c] ?? 0) + (n as number);
    if (dropped) notes.push(`${dropped} held connections were closed while held (close codes: ${JSON.stringify(codes)})`);
    return {
      figures: {
        nodes: servers.length,
        fdLimit: limit,
        redisFdLimit: redisLimit,
        redisMaxclients,
        target: count,
        held,
        usersOnNodes: users.reduce((a, b) => a + b, 0),
        redisKeys: keys,
        redisChannels: Number(pubsub.pubsub_channels ?? Number.NaN),
        heldCalls,
        rampSec: round(rampSec, 1),
        loginSec: round(loginSec, 1),
        loginsPerSec: Math.round(held / loginSec),
        rampNodesCpu: ramp.nodes!,
        rampRedisCpu: ramp.redis!,
        rampHoldersCpu: ramp.holders!,
        rampOtherCpu: ramp.others!,
        nodesRssMB: round(rssNodes / 2 ** 20, 1),
        redisRssMB: round(rssRedis / 2 ** 20, 1),
        redisUsedMB: round(Number(memory.used_memory ?? Number.NaN) / 2 ** 20, 1),
        kbPerConn: round((rssNodes - rssNodes0) / held / 1024, 2),
        kbPerConnWithRedis: round((rssNodes - rssNodes0 + rssRedis - rssRedis0) / held / 1024, 2),
        holdRedisCpu: cpu.redis!,
        holdRedisCpuPeak: peak.redis!,
        holdNodesCpu: cpu.nodes!,
        holdNodesCpuPeak: peak.nodes!,
        holdHoldersCpu: cpu.holders!,
        holdOtherCpu: cpu.others!,
        redisOpsPerSec: Math.round(totalOps),
        refreshPerSec: Math.round(rate('evalsha')),
        evalshaUsec: round(usecPer('evalsha'), 2),
        freshCallP50Ms: round(median(durations), 2),
        freshCallP90Ms: round(percentileOf(durations, 0.9), 2),
        freshCallMaxMs: round(durations.length ? Math.max(...durations) : Number.NaN, 2),
        freshCalls: durations.length,
        nodeHealthzP50Ms: probed.node.p50,
        nodeHealthzP99Ms: probed.node.p99,
        nodeHealthzMaxMs: probed.node.max,
        redisPingP50Ms: probed.redis.p50,
        redisPingP99Ms: probed.redis.p99,
        redisPingMaxMs: probed.redis.max,
        dropped,
      },
      notes,
    };
  } finally {
    stopTrace();
    await holders.kill();
  }
}

/**
 * BENCH_TRACE=file: a JSON line per second (CPU of each group and of the rest of the
 * machine, names Redis holds, refresh calls so far), to see what a stall lines up with.
 */
function trace(path: string | undefined, t0: number, groups: Record<string, number[]>, redis: NonNullable<ScenarioContext['redis']>): () => void {
  if (!path) return () => {};
  const out = Bun.file(path).writer();
  let w = cpuWindow(groups);
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    const cpu = w();
    w = cpuWindow(groups);
    const [ks, st] = await Promise.all([redis.info('keyspace'), redis.commandStats()]).catch(() => [{}, {}] as const);
    const keys = Number(/keys=(\d+)/.exec((ks as Record<string, string>).db0 ?? '')?.[1] ?? 0);
    const s = st as Record<string, { calls: number }>;
    out.write(`${JSON.stringify({ t: Math.round((performance.now() - t0) / 100) / 10, ...cpu, keys, evalsha: s.evalsha?.calls ?? 0, set: s.set?.calls ?? 0, publish: s.publish?.calls ?? 0, mget: s.mget?.calls ?? 0 })}\n`);
    out.flush();
    busy = false;
  }, 1000);
  return () => {
    clearInterval(timer);
    void out.end();
  };
}

async function infoConfig(port: number, key: string): Promise<string> {
  const p = Bun.spawn(['redis-cli', '-p', String(port), 'config', 'get', key], { stdout: 'pipe' });
  return (await new Response(p.stdout).text()).split('\n')[1] ?? '';
}
