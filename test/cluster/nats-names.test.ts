// The KV client's own validators: what it accepts is what the bucket will take.
import { validateBucket, validateKey } from '@nats-io/kv/internal';
import { describe, expect, it } from 'vitest';
import {
  bucketName,
  decodeKey,
  decodeToken,
  encodeKey,
  encodeToken,
  KEY_FILTERS,
  STORE_BUCKETS,
  SUBJECTS,
  subjectId,
  type StoreName,
} from '../../src/cluster/nats-names.js';

/** Device ids ([A-Za-z0-9._-]{1,64}) and node ids (anything printable) that break naive encodings. */
const AWKWARD_IDS = [
  'dev.1',
  '.',
  '..',
  'a.b.c.',
  '-_',
  '=',
  '=2E',
  'x'.repeat(64),
  '.'.repeat(64),
  'node 7',
  'node*',
  'node>',
  '*',
  '>',
  'host/pid:1234',
  'ünïcödé',
  '節點',
  'emoji🛰️',
  'tab\there',
  '$KV',
  '',
];

/** A NATS subject token: no separator, wildcards or whitespace (what the server itself refuses). */
const SUBJECT_TOKEN = /^[^\s.*>]+$/;

describe('NATS token encoding', () => {
  it('keeps plain ids readable and escapes everything else as =XX', () => {
    expect(encodeToken('dev-1_A')).toBe('dev-1_A');
    expect(encodeToken('dev.1')).toBe('dev=2E1');
    expect(encodeToken('=')).toBe('=3D');
    expect(encodeToken('a b')).toBe('a=20b');
    expect(encodeToken('ü')).toBe('=C3=BC');
  });

  it.each(AWKWARD_IDS)('round-trips %j as one valid KV key token and subject token', (id) => {
    const token = encodeToken(id);
    expect(decodeToken(token)).toBe(id);
    expect(token).toMatch(SUBJECT_TOKEN);
    expect(() => validateKey(token)).not.toThrow();
    expect(token.includes('.')).toBe(false);
  });

  it('gives distinct ids distinct tokens', () => {
    const tokens = new Set(AWKWARD_IDS.map(encodeToken));
    expect(tokens.size).toBe(AWKWARD_IDS.length);
  });

  it.each(['dev.1', 'a=2', 'a=2g', '=41', '=C3', 'a=zz', 'a b', ''])('refuses %j, which it could not have written', (token) => {
    expect(() => decodeToken(token)).toThrow(/not an encoded NATS token/);
  });
});

describe('bucket keys', () => {
  it('writes a string key as one token and a pair as two', () => {
    expect(encodeKey('dev.1')).toBe('dev=2E1');
    expect(encodeKey(['dev.1', 'cmd.7'])).toBe('dev=2E1.cmd=2E7');
  });

  it.each(AWKWARD_IDS.flatMap((a) => [a, [a, 'c1'] as const, ['dev.1', a] as const]))('round-trips %j', (key) => {
    const kvKey = encodeKey(key);
    expect(() => validateKey(kvKey)).not.toThrow();
    expect(decodeKey(kvKey)).toEqual(key);
  });

  it('refuses a key of three tokens', () => {
    expect(() => decodeKey('a.b.c')).toThrow(/not a Pulsewire bucket key/);
  });

  it('filters a group with a wildcard that does not reach a longer id', () => {
    expect(KEY_FILTERS.group('dev.1')).toBe('dev=2E1.*');
    expect(encodeKey(['dev.10', 'c1']).startsWith('dev=2E1.')).toBe(false);
  });
});

describe('bucket names and subjects', () => {
  it('names every store\'s bucket within JetStream\'s rules, per namespace', () => {
    for (const store of Object.keys(STORE_BUCKETS) as StoreName[]) {
      expect(() => validateBucket(bucketName(store))).not.toThrow();
      expect(() => validateBucket(bucketName(store, 't-1a2b3c4d'))).not.toThrow();
    }
    expect(bucketName('devices')).toBe('pulsewire-devices');
    expect(bucketName('devices', 'test-x')).toBe('test-x-devices');
  });

  it('refuses a namespace that is not one plain token', () => {
    expect(() => bucketName('devices', 'a.b')).toThrow(/namespace/);
    expect(() => SUBJECTS.live('d', '')).toThrow(/namespace/);
  });

  it('puts one device in one subject token and reads it back', () => {
    expect(SUBJECTS.live('dev.1')).toBe('pulsewire.live.dev=2E1');
    expect(SUBJECTS.node('host 1*')).toBe('pulsewire.node.host=201=2A');
    expect(subjectId(SUBJECTS.live('dev.1'))).toBe('dev.1');
    expect(subjectId(SUBJECTS.node('節點', 'ns'))).toBe('節點');
    expect(SUBJECTS.liveAll()).toBe('pulsewire.live.*');
    expect(SUBJECTS.event('device.online')).toBe('pulsewire.events.device=2Eonline');
  });
});
