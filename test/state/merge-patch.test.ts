import { describe, expect, it } from 'vitest';
import { mergePatch, mergePatchObject, stateDelta } from '../../src/state/merge-patch.js';
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

describe('tagged CBOR spellings in state (docs/json-cbor.md)', () => {
  it('treats a tagged spelling as one value: it replaces, and is replaced, never merged', () => {
    expect(mergePatch({ key: { a: 1 } }, { key: { $bytes: 'AQID' } })).toEqual({ key: { $bytes: 'AQID' } });
    expect(mergePatch({ key: { $float: 'NaN' } }, { key: { a: 1, b: null } })).toEqual({ key: { a: 1 } });
    expect(mergePatch({ key: { $float: 'NaN' } }, { key: { $bytes: 'AQID' } })).toEqual({ key: { $bytes: 'AQID' } });
    expect(mergePatch({ key: { $map: [[1, 'a']] } }, { key: { $map: [[2, 'b']] } })).toEqual({ key: { $map: [[2, 'b']] } });
    // An object with a $-key that is not alone is a plain object and merges.
    expect(mergePatch({ key: { $bytes: 'x', a: 1 } }, { key: { a: 2 } })).toEqual({ key: { $bytes: 'x', a: 2 } });
  });
  it('merges the keys of the document itself, even a lone $-key', () => {
    expect(mergePatchObject({ $float: 1 }, { a: 2 })).toEqual({ $float: 1, a: 2 });
    expect(mergePatchObject({ $float: 1, a: 2 }, { $float: null })).toEqual({ a: 2 });
  });
  it('compares values as the device sees them, not their spelling', () => {
    const desired = {
      gain: { $float: 30 },
      key: { $bytes: '-_8' }, // base64url of fb ff
      big: { $bigint: '5' },
      mode: { $float: 'NaN' },
      table: { $map: [[7, 'a']] }, // integer key 7: REPORTED reads it back as "7" (documented)
    };
    const reported = { gain: 30, key: { $bytes: '+/8=' }, big: 5, mode: { $float: 'NaN' }, table: { '7': 'a' } };
    expect(stateDelta(desired, reported)).toEqual({});
  });
  it('still shows a real difference, in the spelling desired used', () => {
    expect(stateDelta({ gain: { $float: 30 } }, { gain: 31 })).toEqual({ gain: { $float: 30 } });
    expect(stateDelta({ key: { $bytes: 'AQID' } }, { key: { $bytes: 'AQIE' } })).toEqual({ key: { $bytes: 'AQID' } });
    expect(stateDelta({ mode: { $float: 'NaN' } }, { mode: { a: 1 } })).toEqual({ mode: { $float: 'NaN' } });
    expect(stateDelta({ led: { $map: [[1, true]] } }, {})).toEqual({ led: { $map: [[1, true]] } });
  });
});
