import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deriveEnrollmentSecret,
  enrollmentSecretMatches,
  generateSecret,
  hashSecret,
  secretMatches,
} from '../../src/registry/secrets.js';

describe('generateSecret', () => {
  it('is 32 random bytes as unpadded base64url', () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
  });

  it('differs every time', () => {
    const seen = new Set(Array.from({ length: 100 }, generateSecret));
    expect(seen.size).toBe(100);
  });
});

describe('hashSecret / secretMatches', () => {
  it('stores the SHA-256 hex of the UTF-8 bytes', () => {
    // Known vector: SHA-256("abc").
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashSecret('é')).toBe(createHash('sha256').update(Buffer.from([0xc3, 0xa9])).digest('hex'));
  });

  it('matches only the secret that produced the digest', () => {
    const secret = generateSecret();
    const digest = hashSecret(secret);
    expect(secretMatches(secret, digest)).toBe(true);
    expect(secretMatches(`${secret}x`, digest)).toBe(false);
    expect(secretMatches(secret.slice(1), digest)).toBe(false);
    expect(secretMatches('', digest)).toBe(false);
  });

  it('never matches a missing or malformed digest', () => {
    const zeros = '0'.repeat(64);
    expect(secretMatches('x', undefined)).toBe(false);
    expect(secretMatches('x', 'abc')).toBe(false);
    expect(secretMatches('x', hashSecret('x').toUpperCase())).toBe(false);
    expect(secretMatches('x', `${hashSecret('x')}00`)).toBe(false);
    // The dummy digest is all zeros: a malformed digest must not turn into it.
    expect(secretMatches('x', zeros)).toBe(false);
  });
});

describe('deriveEnrollmentSecret', () => {
  it('is unpadded base64url of HMAC-SHA256(key, deviceId)', () => {
    const expected = createHmac('sha256', 'fleet-key').update('sensor-001').digest('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    const derived = deriveEnrollmentSecret('fleet-key', 'sensor-001');
    expect(derived).toBe(expected);
    expect(derived).toHaveLength(43);
    expect(derived).not.toContain('=');
  });

  it('uses the UTF-8 bytes of the key', () => {
    const expected = createHmac('sha256', Buffer.from('clé', 'utf8')).update('d1').digest('base64url');
    expect(deriveEnrollmentSecret('clé', 'd1')).toBe(expected);
  });

  it('depends on both key and device id', () => {
    const a = deriveEnrollmentSecret('k', 'dev-a');
    expect(deriveEnrollmentSecret('k', 'dev-b')).not.toBe(a);
    expect(deriveEnrollmentSecret('k2', 'dev-a')).not.toBe(a);
  });

  it('is recognised by enrollmentSecretMatches, whatever the length of a wrong guess', () => {
    const secret = deriveEnrollmentSecret('k', 'dev-a');
    expect(enrollmentSecretMatches('k', 'dev-a', secret)).toBe(true);
    expect(enrollmentSecretMatches('k', 'dev-b', secret)).toBe(false);
    expect(enrollmentSecretMatches('k2', 'dev-a', secret)).toBe(false);
    expect(enrollmentSecretMatches('k', 'dev-a', `${secret}=`)).toBe(false);
    expect(enrollmentSecretMatches('k', 'dev-a', '')).toBe(false);
    expect(enrollmentSecretMatches('k', 'dev-a', 'x'.repeat(5000))).toBe(false);
  });
});
