/** The strict encoder: exact bytes, no tags, refusals for what it cannot map. */
import { describe, it, expect } from 'vitest';
import { encodeCbor, float64, scanCbor, decodeCbor, senmlRecord, encodeTelemetry } from '../../src/protocol/index.js';

const hex = (value: unknown) => Buffer.from(encodeCbor(value)).toString('hex');

describe('encodeCbor', () => {
  it.each([
    [0, '00'], [23, '17'], [24, '1818'], [255, '18ff'], [256, '190100'], [65536, '1a00010000'],
    [2 ** 32, '1b0000000100000000'], [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
    [-1, '20'], [-25, '3818'], [-(2 ** 32) - 1, '3b0000000100000000'],
    [23.5, 'fb4037800000000000'], [2 ** 53, 'fb4340000000000000'], [NaN, 'fb7ff8000000000000'],
    [Infinity, 'fb7ff0000000000000'], [-0, '00'],
    [12345678901234567890n, '1bab54a98ceb1f0ad2'], [-1n, '20'],
    ['', '60'], ['ü', '62c3bc'], [true, 'f5'], [false, 'f4'], [null, 'f6'], [undefined, 'f7'],
  ])('%s', (value, expected) => {
    expect(hex(value)).toBe(expected);
  });

  it('encodes Uint8Array and Buffer as byte strings without tag 64', () => {
    expect(hex(new Uint8Array([1, 2]))).toBe('420102');
    expect(hex(Buffer.from([1, 2]))).toBe('420102');
  });

  it('forces float64 for integral values with float64()', () => {
    expect(hex(float64(24))).toBe('fb4038000000000000');
    expect(hex(senmlRecord({ n: 'x', v: float64(24) }))).toBe('a2006178' + '02fb4038000000000000');
    expect(decodeCbor(encodeCbor(float64(24)))).toEqual({ value: 24 });
  });

  it('encodes Maps with sorted keys and plain objects with text keys, omitting undefined properties', () => {
    expect(hex(new Map<unknown, unknown>([['b', 1], [-1, 2], [0, 3]]))).toBe('a3' + '0003' + '2002' + '616201');
    expect(hex({ a: 1, skip: undefined })).toBe('a1616101');
    expect(hex(Object.assign(Object.create(null) as object, { z: [] }))).toBe('a1617a80');
  });

  it('never emits a tag: every output passes the scan', () => {
    const value = { a: [1, -1, 1.5, 2 ** 40, 2n ** 63n, 'x', new Uint8Array(3), null, undefined, true], m: new Map([[1, {}]]) };
    expect(scanCbor(encodeCbor(value))).toBeNull();
  });

  it('refuses values that would need a tag or have no CBOR form', () => {
    expect(() => encodeCbor(new Date())).toThrow(TypeError);
    expect(() => encodeCbor(new Set([1]))).toThrow(TypeError);
    expect(() => encodeCbor(new Uint16Array(2))).toThrow(TypeError);
    expect(() => encodeCbor(() => 1)).toThrow(TypeError);
    expect(() => encodeCbor(Symbol('s'))).toThrow(TypeError);
    expect(() => encodeCbor(2n ** 64n)).toThrow(RangeError);
  });

  it('refuses nesting deeper than 16 and cycles', () => {
    const deep = (n: number) => { let v: unknown = []; for (let i = 1; i < n; i++) v = [v]; return v; };
    expect(hex(deep(16))).toBe('81'.repeat(15) + '80');
    expect(() => encodeCbor(deep(17))).toThrow(RangeError);
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(() => encodeCbor(cyclic)).toThrow(RangeError);
  });

  it('round-trips telemetry through the device decoder', () => {
    const records = [senmlRecord({ bn: 'a/', n: 'b', v: 1.25, t: -5 }), { n: 'c', vs: 'hi' }];
    const back = decodeCbor(encodeTelemetry(9, records));
    expect(back).toEqual({ value: [1, 9, [new Map<number, unknown>([[0, 'b'], [2, 1.25], [6, -5], [-2, 'a/']]), new Map([['n', 'c'], ['vs', 'hi']])]] });
  });
});
