import { expect, test } from 'bun:test';

// The type checker is part of the suite: a type error fails `make test` (and CI), not just
// `make typecheck`. Type-level tests (expectTypeOf in client.test.ts) bite only here.
test('bun check: no type errors in sources and tests', () => {
  const run = Bun.spawnSync([process.execPath, 'check', '--no-pretty'], { cwd: `${import.meta.dir}/..`, stdout: 'pipe', stderr: 'pipe' });
  const out = `${run.stdout}${run.stderr}`;
  expect(out).toContain('No type errors');
  expect(run.exitCode).toBe(0);
});
