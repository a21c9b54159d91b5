import { describe, expect, it } from 'vitest';
import { mergePatch, stateDelta } from '../../src/state/merge-patch.js';
import type { JsonValue } from '../../src/state/types.js';

describe('JSON Merge Patch (RFC 7396)', () => {
  // RFC 7396 appendix A, every example.
  const cases: [JsonValue, JsonValue, JsonValue][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(cases)('%j patched with %j is %j', (target, patch, result) => {
    const before = JSON.stringify(target);
    expect(mergePatch(target, patch)).toEqual(result);
    expect(JSON.stringify(target)).toBe(before); // the target is not modified
  });
});

describe('state delta', () => {
  it('lists what desired asks that reported does not show, recursing into objects', () => {
    const desired = { interval: 30, led: { color: 'red', blink: false }, fw: '1.2.0', tags: ['a'] };
    const reported = { interval: 60, led: { color: 'red', blink: true }, fw: '1.2.0', tags: ['a'], uptime: 5 };
    expect(stateDelta(desired, reported)).toEqual({ interval: 30, led: { blink: false } });
  });
  it('is empty when the device shows everything asked, and whole when it reports nothing', () => {
    expect(stateDelta({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 2] }, x: 0 })).toEqual({});
    expect(stateDelta({ a: 1, b: { c: 2 } }, {})).toEqual({ a: 1, b: { c: 2 } });
  });
});
