/** The pre-scan: hex in, null or a coded PulsewireError out; never a throw. */
import { describe, it, expect } from 'vitest';
import { scanCbor, inspectCbor } from '../../src/protocol/cbor-scan.js';
import { decodeCbor } from '../../src/protocol/cbor-decode.js';
import { PulsewireError } from '../../src/errors/catalog.js';

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const code = (hex: string, limits?: { maxDepth?: number; maxItems?: number }) => scanCbor(bytes(hex), limits)?.code ?? null;
const nested = (n: number) => '81'.repeat(n - 1) + '80';

describe('well-formed input passes', () => {
  it.each([
    ['unsigned and negative integers of every width', '8900171818190100 1a000100001b000000010000000020 3863 3bffffffffffffffff'],
    ['half, single and double floats', '83f93c00fa47c35000fb3ff199999999999a'],
    ['simple values false, true, null, undefined', '84f4f5f6f7'],
    ['indefinite array', '9f0102ff'],
    ['indefinite map', 'bf6161016162f5ff'],
    ['indefinite byte string', '5f42010243030405ff'],
    ['indefinite text string with an empty chunk', '7f6673747265616d60ff'],
    ['empty indefinite string', '5fff'],
    ['map with an array key', 'a1820102f5'],
    ['empty array and map', '8280a0'],
  ])('%s', (_, hex) => {
    expect(code(hex.replace(/ /g, ''))).toBeNull();
  });

  it('counts depth from 1 at the top: 16 nested arrays pass, 17 fail', () => {
    expect(code(nested(16))).toBeNull();
    expect(code(nested(17))).toBe('PW_ERR_CBOR_TOO_DEEP');
    expect(code('a101' + nested(15))).toBeNull(); // map at depth 1, arrays 2..16
    expect(code('a101' + nested(16))).toBe('PW_ERR_CBOR_TOO_DEEP');
    expect(code('9f'.repeat(17) + 'ff'.repeat(17))).toBe('PW_ERR_CBOR_TOO_DEEP');
  });

  it('strings add no depth, even indefinite ones', () => {
    expect(code('81'.repeat(16) + '5f4101ff')).toBeNull();
  });

  it('reports where indefinite strings are, and decoding joins their chunks', () => {
    const input = bytes('825f42010243030405ff7f6161626263ff');
    const scan = inspectCbor(input);
    expect(scan.error).toBeNull();
    if (scan.error) return;
    expect(scan.indefiniteStrings).toEqual([{ start: 1, end: 10 }, { start: 10, end: 17 }]);
    expect(decodeCbor(input)).toEqual({ value: [new Uint8Array([1, 2, 3, 4, 5]), 'abc'] });
  });
});

describe('tags are refused anywhere', () => {
  it.each([
    ['date tag at top level', 'c11a5c8f0000'],
    ['cbor-x record definition 0xdfff', 'd9dfff8101'],
    ['cbor-x record tag inside a SenML record', '830101' + '81a1' + '00' + 'd9e00061' + '61'],
    ['self-described CBOR 55799', 'd9d9f780'],
    ['shared structures 0xdffe', 'd9dffe80'],
    ['packed values tag 51', 'd83380'],
    ['bignum tag 2', 'c24101'],
    ['tag in an indefinite map value', 'bf6161c100ff'],
    ['tag as a map key', 'a1c10001'],
    ['64-bit tag number', 'db000000010000000000'],
  ])('%s', (_, hex) => {
    expect(code(hex)).toBe('PW_ERR_CBOR_TAG');
  });
});

describe('malformed input is refused as PW_ERR_CBOR_MALFORMED', () => {
  it.each([
    ['empty input', ''],
    ['truncated array', '8301'],
    ['truncated argument', '19 01'],
    ['truncated string', '6461626364'.slice(0, 6)],
    ['truncated float', 'fb3ff1'],
    ['array length beyond the message', '9bffffffffffffffff'],
    ['string length beyond the message', '5bffffffffffffffff00'],
    ['trailing bytes', '820102 00'],
    ['two items', '0101'],
    ['reserved info 28', '1c'],
    ['reserved info 29 in an array', '813d'],
    ['reserved info 30 (major 7)', 'fe'],
    ['break at top level', 'ff'],
    ['break inside a definite array', '8201ff'],
    ['unclosed indefinite array', '9f01'],
    ['indefinite map ending after a key', 'bf01ff'],
    ['indefinite integer', '1f'],
    ['indefinite byte string with a text chunk', '5f6161ff'],
    ['indefinite text string with a nested indefinite chunk', '7f7f6161ffff'],
    ['indefinite string with an integer chunk', '5f01ff'],
    ['simple value 24 in two-byte form', 'f818'],
    ['simple value 31 in two-byte form', 'f81f'],
    ['unassigned simple value 0', 'e0'],
    ['unassigned simple value 255', 'f8ff'],
    ['invalid UTF-8 in text', '62c328'],
    ['invalid UTF-8 in a text chunk', '7f61ffff'],
  ])('%s', (_, hex) => {
    expect(code(hex.replace(/ /g, ''))).toBe('PW_ERR_CBOR_MALFORMED');
  });

  it('names the byte offset', () => {
    expect(scanCbor(bytes('826261'))?.detail).toBe('truncated: string longer than the message at byte 1');
    expect(scanCbor(bytes('9f01'))?.detail).toBe('truncated: data item expected at byte 2');
  });
});

describe('resource limits', () => {
  it('refuses 5000 nested arrays without throwing', () => {
    let result: PulsewireError | null = null;
    expect(() => { result = scanCbor(bytes(nested(5000))); }).not.toThrow();
    expect(result).toBeInstanceOf(PulsewireError);
    expect(result!.code).toBe('PW_ERR_CBOR_TOO_DEEP');
    expect(decodeCbor(bytes(nested(5000)))).toBeInstanceOf(PulsewireError);
  });

  it('caps the item count, counting the top-level item and string chunks', () => {
    expect(code('83010203', { maxItems: 4 })).toBeNull();
    expect(code('83010203', { maxItems: 3 })).toBe('PW_ERR_CBOR_TOO_MANY_ITEMS');
    expect(code('5f4101410241 03ff'.replace(/ /g, ''), { maxItems: 3 })).toBe('PW_ERR_CBOR_TOO_MANY_ITEMS');
  });

  it('has a default cap of 65,536 items', () => {
    const many = '9a00010000' + '00'.repeat(65536);
    expect(code(many)).toBe('PW_ERR_CBOR_TOO_MANY_ITEMS');
    expect(code('9a0000ffff' + '00'.repeat(65535))).toBeNull();
  });
});
