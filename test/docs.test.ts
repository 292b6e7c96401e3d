import { describe, expect, test } from 'bun:test';
import { CLOSE_CODES, ERRORS, LOGIN_FAILURES } from '../src/protocol/errors.ts';

const protocol = await Bun.file(new URL('../docs/protocol.md', import.meta.url)).text();

/** The first column of the table that follows `marker`. */
function tableKeys(marker: string): string[] {
  const start = protocol.indexOf(marker);
  expect(start).toBeGreaterThan(-1);
  const rows = protocol.slice(start).split('\n').slice(1);
  const keys: string[] = [];
  for (const row of rows.slice(2)) {
    if (!row.startsWith('|')) break;
    keys.push(row.split('|')[1]!.trim().replaceAll('`', ''));
  }
  return keys;
}

describe('docs/protocol.md agrees with src/protocol/errors.ts', () => {
  test('every error code, and no other', () => {
    expect(tableKeys('<!-- error-codes').sort()).toEqual(Object.keys(ERRORS).sort());
  });
  test('every login failure reason, and no other', () => {
    expect(tableKeys('<!-- login-failures').sort()).toEqual(Object.keys(LOGIN_FAILURES).sort());
  });
  test('every close code, and no other', () => {
    expect(tableKeys('<!-- close-codes').sort()).toEqual(Object.keys(CLOSE_CODES).sort());
  });
});

describe('docs/configuration.md agrees with src/config.ts', () => {
  test('the generated table is current (run `bun docs/generate.ts`)', async () => {
    const { CONFIGURATION_DOC, withConfigurationTable } = await import('../docs/generate.ts');
    const text = await Bun.file(CONFIGURATION_DOC).text();
    expect(text).toBe(withConfigurationTable(text));
  });
});
