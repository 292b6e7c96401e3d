import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import deno from '../deno.json' with { type: 'json' };
import pkg from '../package.json' with { type: 'json' };

// Deno resolves dependencies through deno.json's import map, Bun through package.json:
// one version of each, or the Deno run would test other code than the Bun one ships.
test('deno.json pins every runtime dependency at its package.json version, and deno.lock agrees', () => {
  const deps: Record<string, string> = pkg.dependencies;
  const wanted = Object.fromEntries(Object.entries(deps).map(([name, v]) => [name, `npm:${name}@${v}`]));
  expect(deno.imports as Record<string, string>).toEqual(wanted);
  const lock = JSON.parse(readFileSync(join(import.meta.dir, '../deno.lock'), 'utf8'));
  for (const [name, v] of Object.entries(deps)) expect(lock.specifiers[`npm:${name}@${v}`]).toBe(v);
});
