/**
 * Cross-compile the release executables, one per platform, with SHA256SUMS beside them.
 * Usage: bun deploy/release.ts [--outdir dist/release] [target ...]   (`make release`)
 *
 * Each is built with the flags of `bun run build` (package.json), so a release binary is
 * the one the tests run, for another platform. Bun fetches each target's runtime from the
 * npm registry (@oven/bun-<os>-<arch>) the first time and caches it.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pkg from '../package.json' with { type: 'json' };

/** Our name for each release, and Bun's --target for it. */
export const TARGETS = {
  'linux-x64': 'bun-linux-x64',
  'linux-x64-baseline': 'bun-linux-x64-baseline', // CPUs without AVX2 (before ~2013)
  'linux-x64-musl': 'bun-linux-x64-musl', // Alpine
  'linux-arm64': 'bun-linux-arm64', // Raspberry Pi 4/5, Graviton, most edge boxes
  'darwin-arm64': 'bun-darwin-arm64',
  'darwin-x64': 'bun-darwin-x64',
  'windows-x64': 'bun-windows-x64',
} as const;
export type Target = keyof typeof TARGETS;

const root = join(import.meta.dir, '..');

/** `bun run build`'s flags, less its --outfile. */
export function buildFlags(): string[] {
  const words = pkg.scripts.build.split(' ').filter(Boolean);
  if (words[0] !== 'bun' || words[1] !== 'build') throw new Error(`unexpected build script: ${pkg.scripts.build}`);
  const flags = words.slice(2);
  const i = flags.indexOf('--outfile');
  if (i !== -1) flags.splice(i, 2);
  return flags;
}

export const fileName = (target: Target) => `signalbox-${target}${target.startsWith('windows') ? '.exe' : ''}`;

/** Build one target into `outdir`; returns the file's path. */
export function buildTarget(target: Target, outdir: string): string {
  const file = join(outdir, fileName(target));
  const args = [...buildFlags(), `--target=${TARGETS[target]}`, '--outfile', file];
  const run = Bun.spawnSync([process.execPath, 'build', ...args], { cwd: root, stdout: 'pipe', stderr: 'pipe' });
  if (run.exitCode !== 0) {
    throw new Error(`bun build --target=${TARGETS[target]} failed:\n${run.stderr.toString()}${run.stdout.toString()}`);
  }
  return file;
}

async function sha256(file: string): Promise<string> {
  const hasher = new Bun.CryptoHasher('sha256');
  for await (const chunk of Bun.file(file).stream()) hasher.update(chunk);
  return hasher.digest('hex');
}

async function main(argv: string[]) {
  let outdir = join(root, 'dist/release');
  const wanted: Target[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--outdir') outdir = argv[++i] ?? outdir;
    else if (arg in TARGETS) wanted.push(arg as Target);
    else throw new Error(`unknown target or flag ${arg}; targets: ${Object.keys(TARGETS).join(', ')}`);
  }
  const targets = wanted.length ? wanted : (Object.keys(TARGETS) as Target[]);

  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const sums: string[] = [];
  console.log(`signalbox ${pkg.version}: ${targets.length} executables into ${outdir}`);
  for (const target of targets) {
    const t0 = performance.now();
    const file = buildTarget(target, outdir);
    const bytes = statSync(file).size;
    sums.push(`${await sha256(file)}  ${fileName(target)}`);
    const mib = (bytes / 2 ** 20).toFixed(1);
    console.log(`  ${fileName(target).padEnd(34)} ${mib.padStart(6)} MiB  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  // The format `sha256sum -c SHA256SUMS` (and `shasum -a 256 -c`) checks.
  writeFileSync(join(outdir, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  console.log(`  SHA256SUMS`);
}

if (import.meta.main) await main(process.argv.slice(2));
