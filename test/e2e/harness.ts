import { afterAll, beforeAll, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The machinery of the browser tests. Chromium gathers ICE candidates on every interface it
 * can see, so a runner script (which starts the servers and Chromium, drives the pages and
 * prints one `@@e2e {json}` line of facts per scenario) runs inside a network namespace that
 * has only `lo` (root: `unshare --net`; elsewhere an unprivileged user namespace, where the
 * kernel allows one). The test file judges the facts.
 *
 * Without Chromium or a namespace the tests skip, loudly; under CI=true they fail instead.
 */
export const CHROMIUM = '/usr/bin/chromium';

type Setup = { ns: string[]; ip: string } | { missing: string };

function setup(): Setup {
  if (process.platform !== 'linux') return { missing: 'network namespaces need Linux' };
  if (!existsSync(CHROMIUM)) return { missing: `${CHROMIUM} not found (Debian: apt-get install chromium)` };
  const ip = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
  if (ip === undefined) return { missing: 'the ip command (iproute2) not found' };
  const ways = [['unshare', '--net'], ['unshare', '--user', '--map-root-user', '--net']];
  for (const ns of process.getuid?.() === 0 ? ways : ways.slice(1)) {
    const probe = Bun.spawnSync([...ns, '--', ip, 'link', 'set', 'lo', 'up'], { stdout: 'ignore', stderr: 'ignore' });
    if (probe.exitCode === 0) return { ns, ip };
  }
  return { missing: 'cannot create a network namespace (run as root, or allow unprivileged user namespaces)' };
}

const env = setup();
const CI = process.env.CI === 'true';
/** Why the browser tests cannot run here, or undefined when they can. */
export const missing = 'missing' in env ? env.missing : undefined;

interface Result {
  scenario: string;
  facts: Record<string, any>;
  error?: string;
}

/** SIGKILL the runner's process group: the runner, its servers and the browser. */
const killGroup = (pid: number) => {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
};

export interface BrowserSuiteOptions {
  /** The runner script. */
  runner: string;
  /** Its arguments, prepared in `dir` (a fresh temporary directory, removed afterwards). */
  args: (dir: string) => string[];
  /** Every scenario the runner reports. */
  scenarios: readonly string[];
  /** The whole runner is killed after this long. */
  limitMs?: number;
}

/**
 * Start `runner` in a loopback-only namespace before the file's tests (beforeAll), and wait
 * for it after them (afterAll). `facts(scenario)` resolves to what the runner reported;
 * `e2e(name, fn)` is a test that runs where the browser can, skips loudly elsewhere, and
 * fails under CI.
 */
export function browserSuite({ runner, args, scenarios, limitMs = 240_000 }: BrowserSuiteOptions) {
  if (missing !== undefined) console.warn(`\n*** browser end-to-end tests ${CI ? 'FAILING (CI=true)' : 'SKIPPED'}: ${missing} ***\n`);

  const slots = new Map<string, PromiseWithResolvers<Result>>();
  const slot = (name: string) => {
    let s = slots.get(name);
    if (s === undefined) slots.set(name, (s = Promise.withResolvers<Result>()));
    return s;
  };
  for (const name of scenarios) slot(name).promise.catch(() => {}); // judged by the tests, not unhandled

  let dir: string | undefined;
  let running: { kill(): void; exited: Promise<number> } | undefined;

  beforeAll(() => {
    if ('missing' in env) return;
    dir = mkdtempSync(join(tmpdir(), 'signalbox-e2e-'));
    const argv = args(dir);
    // In the namespace: bring lo up, then run the runner, in a session of its own so that
    // one signal to the group ends all it started.
    const proc = Bun.spawn(
      [...env.ns, '--', 'setsid', 'sh', '-c', '"$0" link set lo up && exec "$@"', env.ip, process.execPath, runner, ...argv],
      // TMPDIR and HOME: Chromium's fresh profile (Playwright makes one per launch), its
      // crash database and PulseAudio's files land in `dir`, which afterAll removes.
      { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, TMPDIR: dir, HOME: dir } },
    );
    running = { exited: proc.exited, kill: () => killGroup(proc.pid) };
    const killer = setTimeout(() => killGroup(proc.pid), limitMs);
    void (async () => {
      let buffer = '';
      for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (!line.startsWith('@@e2e ')) continue;
          const result = JSON.parse(line.slice(6)) as Result;
          slot(result.scenario).resolve(result);
        }
      }
      const code = await proc.exited;
      clearTimeout(killer);
      const stderr = (await new Response(proc.stderr).text()).slice(-3000);
      // Settles only the scenarios the runner never reported.
      for (const s of slots.values()) s.reject(new Error(`runner ended (exit ${code}) before reporting this:\n${stderr}`));
    })();
  }, 60_000);

  afterAll(async () => {
    // The runner closes the browser and the servers after its last scenario; killed earlier,
    // it would leave Chromium writing into `dir` after we remove it.
    if (running !== undefined) {
      const gone = await Promise.race([running.exited.then(() => true), Bun.sleep(20_000).then(() => false)]);
      if (!gone) running.kill();
      await running.exited;
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  /**
   * The facts the runner reported for `scenario`. A scenario that failed there fails here,
   * unless it failed after gathering every fact in `needed`.
   */
  async function facts(scenario: string, ...needed: string[]): Promise<Record<string, any>> {
    const r = await slot(scenario).promise;
    const enough = needed.length > 0 && needed.every((k) => k in r.facts);
    if (r.error !== undefined && !enough) throw new Error(`${scenario}: ${r.error}\nfacts: ${JSON.stringify(r.facts, null, 1)}`);
    return r.facts;
  }

  const e2e = (name: string, fn: () => Promise<void>) => {
    if (!('missing' in env)) return test(name, fn, 120_000);
    if (CI) return test(name, () => { throw new Error(`cannot run: ${env.missing}`); });
    return test.skip(`${name} [needs ${CHROMIUM} and a network namespace]`, fn);
  };

  return { facts, e2e };
}
