import { expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import deno from '../deno.json' with { type: 'json' };
import pkg from '../package.json' with { type: 'json' };
import { denoBin } from './helpers.ts';

const root = join(import.meta.dir, '..');

// Deno resolves dependencies through deno.json's import map, Bun through package.json:
// one version of each, or the Deno run would test other code than the Bun one ships.
test('deno.json pins every runtime dependency at its package.json version, and deno.lock agrees', () => {
  const deps: Record<string, string> = pkg.dependencies;
  const imports: Record<string, string> = deno.imports;
  for (const [name, v] of Object.entries(deps)) expect(imports[name]).toBe(`npm:${name}@${v}`);
  // Besides the bare names, only subpath prefixes (`hono/` for hono/jwt), at the same versions.
  for (const [key, value] of Object.entries(imports)) {
    const name = key.replace(/\/$/, '');
    expect([key, deps[name] && (key.endsWith('/') ? `npm:/${name}@${deps[name]}/` : `npm:${name}@${deps[name]}`)]).toEqual([key, value]);
  }
  const lock = JSON.parse(readFileSync(join(root, 'deno.lock'), 'utf8'));
  // A package with peers resolves to "1.8.0_valibot@1.5.0": the version is what precedes "_".
  for (const [name, v] of Object.entries(deps)) expect(lock.specifiers[`npm:${name}@${v}`]?.split("_")[0]).toBe(v);
});

// `bun check` sees Deno through src/adapter/deno.d.ts, a hand-written slice; Deno's own
// checker holds that slice to the real declarations.
const haveDeno = existsSync(denoBin);
if (!haveDeno && process.env.CI !== 'true') console.warn(`SKIPPED deno check: no Deno at ${denoBin} (make test installs it)`);
test.skipIf(!haveDeno && process.env.CI !== 'true')('the Deno entry type-checks against Deno\'s own types', () => {
  const run = Bun.spawnSync([denoBin, 'check', '--frozen', '--quiet', 'src/main.deno.ts'], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1' },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  expect(run.stderr.toString() + run.stdout.toString()).toBe('');
  expect(run.exitCode).toBe(0);
}, 60_000);
