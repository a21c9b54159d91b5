import { describe, expect, it } from 'vitest';
import { encodeCbor, Float64 } from '../../src/protocol/cbor-encode.js';
import { decodeCbor } from '../../src/protocol/cbor-decode.js';
import { cborStateToJson, cborToJson, JsonCborError, jsonStateToCbor, jsonToCbor, readBack } from '../../src/protocol/json-cbor.js';

const hex = (value: unknown) => Buffer.from(encodeCbor(value)).toString('hex');
const roundTrip = (json: any) => {
  const decoded = decodeCbor(encodeCbor(jsonToCbor(json)), undefined, { exactIntegers: true });
  if (decoded instanceof Error) throw decoded;
  return cborToJson(decoded.value);
};

describe('JSON <-> CBOR mapping (docs/json-cbor.md)', () => {
  it('maps plain JSON to the obvious CBOR, integers as integers and fractions as float64', () => {
    expect(hex(jsonToCbor({ seconds: 30 }))).toBe('a1677365636f6e6473181e');
    expect(hex(jsonToCbor(23.5))).toBe('fb4037800000000000');
    expect(hex(jsonToCbor([true, null, 'x']))).toBe('83f6f66178'.replace('f6f6', 'f5f6'));
  });
  it('spells byte strings, big integers and forced floats as tagged objects, both ways', () => {
    expect(hex(jsonToCbor({ $bytes: 'AQID' }))).toBe('43010203');
    expect(hex(jsonToCbor({ $bigint: '18446744073709551615' }))).toBe('1bffffffffffffffff');
    expect(hex(jsonToCbor({ $bigint: '-9223372036854775808' }))).toBe('3b7fffffffffffffff');
    expect(jsonToCbor({ $float: 30 })).toBeInstanceOf(Float64);
    expect(hex(jsonToCbor({ $float: 30 }))).toBe('fb403e000000000000');
    expect(roundTrip({ $bytes: 'AQID' })).toEqual({ $bytes: 'AQID' });
    expect(roundTrip({ $bigint: '18446744073709551615' })).toEqual({ $bigint: '18446744073709551615' });
    expect(roundTrip({ $float: 'NaN' })).toEqual({ $float: 'NaN' });
    expect(roundTrip({ $float: '-Infinity' })).toEqual({ $float: '-Infinity' });
    expect(roundTrip({ $map: [[1, 'one'], ['two', 2]] })).toEqual({ $map: [[1, 'one'], ['two', 2]] });
  });
  it('refuses what would silently change: unsafe JSON integers, bad tagged values, beyond 64 bits', () => {
    expect(() => jsonToCbor({ big: 2 ** 60 })).toThrow(JsonCborError);
    expect(() => jsonToCbor({ big: 2 ** 60 })).toThrow(/big: .*\$bigint/);
    expect(() => jsonToCbor({ $bigint: '18446744073709551616' })).toThrow(/64 bits/);
    expect(() => jsonToCbor({ $bytes: 'not base64!' })).toThrow(/base64/);
    expect(() => jsonToCbor({ $float: 'pi' })).toThrow(/\$float/);
  });
  it('keeps an object with a $-key that is not alone as a plain object', () => {
    expect(roundTrip({ $bytes: 'AQID', other: 1 })).toEqual({ $bytes: 'AQID', other: 1 });
  });
  it('turns a device state map into a text-keyed JSON object', () => {
    const state = new Map<unknown, unknown>([['fw', '1.2.0'], [7, new Map([['a', 1]])], ['raw', new Uint8Array([255])]]);
    expect(cborStateToJson(state)).toEqual({ fw: '1.2.0', '7': { a: 1 }, raw: { $bytes: '/w==' } });
  });
  it('keeps a nested device map that looks like a tagged spelling a map', () => {
    const state = new Map<unknown, unknown>([['cfg', new Map([['$float', 1]])], ['$bytes', 2]]);
    expect(cborStateToJson(state)).toEqual({ cfg: { $map: [['$float', 1]] }, $bytes: 2 });
  });
  it('sends the keys of a state document as keys, even a lone $-key', () => {
    expect(hex(jsonStateToCbor({ $float: 1 }))).toBe('a16624666c6f617401');
    expect(hex(jsonStateToCbor({ gain: { $float: 1 } }))).toBe('a1646761696efb3ff0000000000000');
  });
  it('reads a value back as the hub would see the device report it', () => {
    expect(readBack({ $float: 30 })).toBe(30);
    expect(readBack({ $bytes: '-_8' })).toEqual({ $bytes: '+/8=' });
    expect(readBack({ $bigint: '5' })).toBe(5);
    expect(readBack({ $bigint: '18446744073709551615' })).toEqual({ $bigint: '18446744073709551615' });
    expect(readBack({ $map: [[7, { $float: 1.5 }]] })).toEqual({ '7': 1.5 });
    expect(readBack({ a: [{ $float: 'Infinity' }] })).toEqual({ a: [{ $float: 'Infinity' }] });
  });
});
