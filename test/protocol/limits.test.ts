import { describe, it, expect } from 'vitest';
import {
  isValidDeviceId, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_RECORDS, DEFAULT_MAX_FUTURE_SECONDS, DEFAULT_MAX_PAST_SECONDS,
  MAX_IN_FLIGHT, MAX_CBOR_DEPTH,
} from '../../src/protocol/index.js';

describe('protocol limits', () => {
  it('has the defaults of protocol-v1.md', () => {
    expect([DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_RECORDS, DEFAULT_MAX_FUTURE_SECONDS, DEFAULT_MAX_PAST_SECONDS, MAX_IN_FLIGHT, MAX_CBOR_DEPTH])
      .toEqual([65536, 1024, 300, 2592000, 32, 16]);
  });

  it('accepts device ids of 1 to 64 characters of [A-Za-z0-9._-]', () => {
    expect(isValidDeviceId('dev42')).toBe(true);
    expect(isValidDeviceId('A.b_c-9')).toBe(true);
    expect(isValidDeviceId('x'.repeat(64))).toBe(true);
    expect(isValidDeviceId('x'.repeat(65))).toBe(false);
    expect(isValidDeviceId('')).toBe(false);
    for (const bad of ['a:b', 'a b', 'a/b', 'dév', 'a\n', 'a,b']) expect(isValidDeviceId(bad)).toBe(false);
    expect(isValidDeviceId(42)).toBe(false);
  });
});
