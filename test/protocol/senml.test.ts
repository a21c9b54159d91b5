/** SenML resolution (RFC 8428 4.6) and the validation that protects storage. */
import { describe, it, expect } from 'vitest';
import { resolvePack, senmlRecord, type SenmlFields } from '../../src/protocol/index.js';
import { PulsewireError } from '../../src/errors/catalog.js';
import type { Reading } from '../../src/protocol/messages.js';

const NOW_S = 1_764_000_000;
const nowUs = NOW_S * 1e6;
const rec = (f: SenmlFields) => senmlRecord(f);

function ok(pack: unknown, limits: object = {}): Reading[] {
  const r = resolvePack(pack, { nowUs, ...limits });
  if (r instanceof PulsewireError) throw r;
  return r.readings;
}
function fail(pack: unknown, limits: object = {}): PulsewireError {
  const r = resolvePack(pack, { nowUs, ...limits });
  if (!(r instanceof PulsewireError)) throw new Error('expected an error');
  return r;
}

describe('base fields', () => {
  it('carry forward to later records until redefined', () => {
    const readings = ok([
      rec({ bn: 'dev/', bt: NOW_S, bu: 'Cel', n: 'a', v: 1 }),
      rec({ n: 'b', v: 2, t: 1 }),
      rec({ bn: 'other/', n: 'c', v: 3, u: 'V' }),
      rec({ n: 'd', v: 4 }),
    ]);
    expect(readings.map((r) => [r.name, r.unit, r.timeUs])).toEqual([
      ['dev/a', 'Cel', nowUs], ['dev/b', 'Cel', nowUs + 1e6], ['other/c', 'V', nowUs], ['other/d', 'Cel', nowUs],
    ]);
  });

  it('apply to the record that defines them', () => {
    expect(ok([rec({ bn: 'x', v: 1 })])[0]!.name).toBe('x');
  });

  it('add bv to v and bs to s', () => {
    const readings = ok([rec({ n: 'a', bv: 100, v: 1.5 }), rec({ n: 'b', v: -2 }), rec({ n: 'c', bs: 10, s: 5 })]);
    expect(readings.map((r) => [r.kind, r.value])).toEqual([['value', 101.5], ['value', 98], ['sum', 15]]);
  });

  it('never create a value from bv or bs alone', () => {
    expect(fail([rec({ n: 'a', bv: 1 })]).detail).toBe('record 0: record has no value (v, vs, vb, vd or s)');
    expect(ok([rec({ n: 'a', bv: 1, vs: 'on' })])).toEqual([{ name: 'a', timeUs: nowUs, kind: 'text', value: 'on' }]);
  });

  it('reset with an empty bu, and an empty u means no unit', () => {
    const readings = ok([rec({ bu: 'Cel', n: 'a', v: 1 }), rec({ bu: '', n: 'b', v: 1 }), rec({ n: 'c', u: '', v: 1 })]);
    expect(readings.map((r) => r.unit)).toEqual(['Cel', undefined, undefined]);
    expect('unit' in readings[1]!).toBe(false);
  });
});

describe('times', () => {
  it('below 2^28 are relative to now; 0 or absent is now', () => {
    const readings = ok([rec({ n: 'a', v: 1 }), rec({ n: 'b', v: 1, t: 0 }), rec({ n: 'c', v: 1, t: -60.5 }), rec({ n: 'd', bt: -10, t: 4, v: 1 })]);
    expect(readings.map((r) => r.timeUs)).toEqual([nowUs, nowUs, nowUs - 60_500_000, nowUs - 6e6]);
  });

  it('from 2^28 on are absolute seconds, fractions kept to the microsecond', () => {
    expect(ok([rec({ n: 'a', v: 1, t: NOW_S - 0.123456 })])[0]!.timeUs).toBe(nowUs - 123_456);
    expect(ok([rec({ n: 'a', v: 1, bt: NOW_S - 100, t: 0.5 })])[0]!.timeUs).toBe(nowUs - 99_500_000);
  });

  it('outside [now - maxPast, now + maxFuture] reject the whole pack with ACK 3', () => {
    expect(ok([rec({ n: 'a', v: 1, t: 300 })])).toHaveLength(1);
    const ahead = fail([rec({ n: 'a', v: 1 }), rec({ n: 'b', v: 1, t: 301 })]);
    expect(ahead.code).toBe('PW_ERR_TIME_RANGE');
    expect(ahead.spec.ack).toBe(3);
    expect(ahead.detail).toMatch(/^record 1: /);
    expect(ok([rec({ n: 'a', v: 1, t: NOW_S - 30 * 86400 })])).toHaveLength(1);
    expect(fail([rec({ n: 'a', v: 1, t: NOW_S - 30 * 86400 - 1 })]).code).toBe('PW_ERR_TIME_RANGE');
    expect(fail([rec({ n: 'a', v: 1, t: 1 })], { maxFutureSeconds: 0 }).code).toBe('PW_ERR_TIME_RANGE');
    expect(ok([rec({ n: 'a', v: 1, t: 1000 })], { maxFutureSeconds: 1000 })).toHaveLength(1);
  });

  it('lose to a malformed record anywhere in the pack', () => {
    expect(fail([rec({ n: 'a', v: 1, t: 10_000 }), rec({ n: '-bad', v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
  });
});

describe('labels', () => {
  it('accepts text labels and mixed records', () => {
    const readings = ok([{ bn: 'dev/', n: 'a', u: 'Cel', v: 1 }, new Map<unknown, unknown>([['n', 'b'], [4, true]])]);
    expect(readings).toEqual([
      { name: 'dev/a', unit: 'Cel', timeUs: nowUs, kind: 'value', value: 1 },
      { name: 'dev/b', timeUs: nowUs, kind: 'flag', value: true },
    ]);
  });

  it('refuses the same field given as integer and text label', () => {
    expect(fail([new Map<unknown, unknown>([[0, 'a'], ['n', 'b'], [2, 1]])]).detail).toBe('record 0: n given twice (integer and text label)');
  });

  it('ignores unknown labels but refuses must-understand ones ending in "_"', () => {
    expect(ok([new Map<unknown, unknown>([[0, 'a'], [2, 1], [99, 'x'], ['ct', 'y']])])).toHaveLength(1);
    expect(fail([{ n: 'a', v: 1, ct_: 'x' }]).detail).toBe('record 0: must-understand label "ct_" not supported');
    expect(fail([new Map<unknown, unknown>([[0, 'a'], [2, 1], [true, 1]])]).detail).toBe('record 0: labels must be integers or text');
  });

  it('checks bver: an integer from 1 to 10', () => {
    expect(ok([rec({ bver: 10, n: 'a', v: 1 })])).toHaveLength(1);
    expect(fail([rec({ bver: 11, n: 'a', v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
    expect(fail([rec({ bver: 10.5, n: 'a', v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
    expect(fail([{ bver: '10', n: 'a', v: 1 }]).code).toBe('PW_ERR_PACK_MALFORMED');
  });
});

describe('values', () => {
  it('resolves each kind', () => {
    const vd = new Uint8Array([1, 2]);
    const readings = ok([rec({ bn: 'x/', n: 'v', v: 1 }), rec({ n: 'vs', vs: 'héllo' }), rec({ n: 'vb', vb: false }), rec({ n: 'vd', vd }), rec({ n: 's', s: 2 })]);
    expect(readings.map((r) => [r.kind, r.value])).toEqual([['value', 1], ['text', 'héllo'], ['flag', false], ['data', vd], ['sum', 2]]);
  });

  it('requires exactly one of v, vs, vb, vd, s', () => {
    expect(fail([rec({ n: 'a' })]).detail).toBe('record 0: record has no value (v, vs, vb, vd or s)');
    expect(fail([rec({ n: 'a', v: 1, s: 1 })]).detail).toBe('record 0: record has more than one value (v, s)');
    expect(fail([rec({ n: 'a', vs: 'x', vb: true })]).code).toBe('PW_ERR_PACK_MALFORMED');
  });

  it('refuses NaN, infinities and sums that overflow', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      expect(fail([rec({ n: 'a', v: bad })]).detail).toBe('record 0: v must be finite (no NaN or infinity)');
    }
    expect(fail([rec({ n: 'a', t: NaN, v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
    expect(fail([rec({ n: 'a', bv: 1.7e308, v: 1.7e308 })]).detail).toBe('record 0: resolved v is not finite');
  });

  it('checks value types', () => {
    expect(fail([{ n: 'a', v: '1' }]).detail).toBe('record 0: v must be a number');
    expect(fail([{ n: 'a', vb: 1 }]).detail).toBe('record 0: vb must be a boolean');
    expect(fail([{ n: 'a', vd: 'AQI' }]).detail).toBe('record 0: vd must be a byte string');
    expect(fail([{ n: 'a', vs: 1 }]).detail).toBe('record 0: vs must be text');
    expect(ok([{ n: 'a', v: 5n }])[0]!.value).toBe(5);
  });

  it('limits vs to 1024 characters without control characters', () => {
    expect(ok([rec({ n: 'a', vs: 'é'.repeat(1024) })])).toHaveLength(1);
    expect(fail([rec({ n: 'a', vs: 'x'.repeat(1025) })]).code).toBe('PW_ERR_PACK_MALFORMED');
    for (const c of ['\n', '\u0000', '\u007f', '\u0085', '\u009f']) {
      expect(fail([rec({ n: 'a', vs: `a${c}b` })]).detail).toBe('record 0: vs contains a control character');
    }
  });
});

describe('names and units', () => {
  it('follow RFC 8428 name rules, 1 to 128 characters', () => {
    expect(ok([rec({ n: '0a-b:c.d/e_f', v: 1 })])).toHaveLength(1);
    expect(ok([rec({ n: 'a'.repeat(128), v: 1 })])).toHaveLength(1);
    expect(fail([rec({ n: 'a'.repeat(129), v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
    expect(fail([rec({ v: 1 })]).detail).toBe('record 0: name is empty (no bn or n)');
    expect(fail([rec({ n: '_a', v: 1 })]).detail).toBe('record 0: name must start with a letter or digit');
    expect(fail([rec({ n: 'a', v: 1 }), rec({ n: 'b', v: 1 }), rec({ n: 'c', v: 1 }), rec({ n: 'd e', v: 1 })]).detail)
      .toBe('record 3: name has invalid character');
    expect(fail([rec({ n: 'tëmp', v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
    expect(fail([rec({ bn: 'a', n: ',device=x', v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
  });

  it('limits units to 32 printable ASCII characters', () => {
    expect(ok([rec({ n: 'a', u: '%RH', v: 1 })])[0]!.unit).toBe('%RH');
    expect(ok([rec({ n: 'a', u: 'x'.repeat(32), v: 1 })])).toHaveLength(1);
    expect(fail([rec({ n: 'a', u: 'x'.repeat(33), v: 1 })]).detail).toBe('record 0: u longer than 32 characters');
    expect(fail([rec({ n: 'a', bu: 'µm', v: 1 })]).detail).toBe('record 0: bu has a character outside printable ASCII');
  });

  it('refuses InfluxDB line protocol injection attempts', () => {
    expect(fail([rec({ n: 'a', u: 'Cel\nother,device=x value=1', v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
    expect(fail([rec({ n: 'a', vs: 'x"\ntelemetry,device=victim value=1', })]).code).toBe('PW_ERR_PACK_MALFORMED');
    expect(fail([rec({ n: 'a\nb', v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
    expect(fail([rec({ bn: 'a b=1', n: 'x', v: 1 })]).code).toBe('PW_ERR_PACK_MALFORMED');
  });
});

describe('packs', () => {
  it('must be a non-empty array of maps within maxRecords', () => {
    expect(fail([]).detail).toBe('pack is empty');
    expect(fail('x').detail).toBe('pack must be an array of records');
    expect(fail([1]).detail).toBe('record 0: record must be a map');
    expect(fail([[0, 'a']]).code).toBe('PW_ERR_PACK_MALFORMED');
    const many = (n: number) => Array.from({ length: n }, (_, i) => rec({ n: `r${i}`, v: i }));
    expect(ok(many(1024))).toHaveLength(1024);
    expect(fail(many(1025)).detail).toBe('pack has 1025 records, at most 1024 allowed');
    expect(fail(many(3), { maxRecords: 2 }).code).toBe('PW_ERR_PACK_MALFORMED');
  });

  it('answers malformed packs with ACK 2', () => {
    expect(fail([]).spec.ack).toBe(2);
  });
});
