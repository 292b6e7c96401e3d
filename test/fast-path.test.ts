import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import * as v from 'valibot';
import { withinCall } from '../src/face/seed.ts';
import { ClientMessage } from '../src/protocol/client.ts';

/**
 * The seed face's hot path checks a message within a call without building valibot's copy
 * of it. It may decline what the schemas accept (those go the long way), but it must never
 * accept what they refuse, nor read a message differently.
 */
describe('the hot path accepts nothing the schemas refuse', () => {
  const partner = 'bob';
  const message = fc.record(
    {
      type: fc.oneof(fc.constantFrom('offer', 'answer', 'candidate', 'leave', 'login', 'join'), fc.anything()),
      name: fc.oneof(fc.constant(partner), fc.constant('bob '), fc.string(), fc.anything()),
      offer: fc.oneof(fc.jsonValue(), fc.anything()),
      answer: fc.oneof(fc.jsonValue(), fc.anything()),
      candidate: fc.oneof(fc.jsonValue(), fc.constant(null), fc.anything()),
      extra: fc.jsonValue(),
    },
    { requiredKeys: ['type'] },
  );

  test('random messages: whatever it takes, valibot takes, with the same type, name and payload', () => {
    let taken = 0;
    fc.assert(
      fc.property(message, (m) => {
        const fast = withinCall(m, partner);
        if (fast === undefined) return;
        taken++;
        const r = v.safeParse(ClientMessage, m);
        expect(r.success).toBe(true);
        const out = r.output as Record<string, unknown>;
        expect(out.type).toBe(fast);
        expect(out.name).toBe(partner);
        expect(out[fast]).toBe((m as Record<string, unknown>)[fast]);
      }),
      { numRuns: 20_000 },
    );
    // The property would hold vacuously if the generator never produced a fast message.
    expect(taken).toBeGreaterThan(100);
  });

  test('it declines what is not for the partner, and what the schemas would word an error for', () => {
    expect(withinCall({ type: 'candidate', name: 'carol', candidate: 'c' }, partner)).toBeUndefined();
    expect(withinCall({ type: 'candidate', name: partner, candidate: [1] }, partner)).toBeUndefined();
    expect(withinCall({ type: 'candidate', name: partner }, partner)).toBeUndefined();
    expect(withinCall({ type: 'answer', name: partner, answer: null }, partner)).toBeUndefined();
    expect(withinCall({ type: 'leave', name: partner }, partner)).toBeUndefined();
    expect(withinCall({ type: 'candidate', name: partner, candidate: null }, partner)).toBe('candidate');
  });
});
