import pkg from '../package.json' with { type: 'json' };
import { join } from 'node:path';

const root = join(import.meta.dir, '..');

/** Build the executable exactly as `make build` does (package.json's flags, this very Bun), to `outfile`. */
export function buildExecutable(outfile: string): void {
  const [, ...args] = pkg.scripts.build.split(' ').filter((a, i, all) => a !== '--outfile' && all[i - 1] !== '--outfile');
  const build = Bun.spawnSync([process.execPath, ...args, '--outfile', outfile], { cwd: root, stderr: 'pipe', stdout: 'pipe' });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
}
