/**
 * Device secrets (protocol v1, section 2). Pure functions, no state.
 *
 * The hub stores only SHA-256 digests of registered secrets, so a copy of the
 * registry does not hand out fleet credentials. A random secret has 256 bits
 * of entropy, so an unsalted fast hash is enough: there is nothing to guess
 * from a digest, unlike a human password.
 *
 * Every comparison is constant-time (crypto.timingSafeEqual over buffers of
 * equal length) so response timing does not reveal how many leading bytes of
 * a guess were right.
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Bytes of randomness in a generated secret: 256 bits, twice the protocol's minimum. */
const SECRET_BYTES = 32;

/** A SHA-256 digest as lowercase hex. */
const DIGEST_HEX = /^[0-9a-f]{64}$/;

/**
 * Compared against when the stored digest is missing or malformed, so that
 * the work done does not depend on whether a device exists (see auth.ts).
 */
const DUMMY_DIGEST = Buffer.alloc(32);

/** A new random secret, base64url without padding (43 characters). */
export function generateSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

/** SHA-256 of the secret's UTF-8 bytes, as lowercase hex: what the registry stores. */
export function hashSecret(secret: string): string {
  return sha256(secret).toString('hex');
}

/**
 * Whether `secret` hashes to `digestHex`, in constant time. A malformed digest
 * never matches, but is still compared against so the timing stays the same.
 */
export function secretMatches(secret: string, digestHex: string | undefined): boolean {
  const actual = sha256(secret);
  const valid = digestHex !== undefined && DIGEST_HEX.test(digestHex);
  const expected = valid ? Buffer.from(digestHex, 'hex') : DUMMY_DIGEST;
  return timingSafeEqual(actual, expected) && valid;
}

/**
 * The secret a device holds when provisioned from the fleet's enrollment key:
 * base64url(HMAC-SHA256(key, deviceId)), unpadded, key and id as UTF-8 bytes.
 */
export function deriveEnrollmentSecret(enrollmentKey: string, deviceId: string): string {
  return createHmac('sha256', Buffer.from(enrollmentKey, 'utf8'))
    .update(Buffer.from(deviceId, 'utf8'))
    .digest('base64url');
}

/**
 * Whether `secret` is the one derived for `deviceId`, in constant time.
 * Both sides are hashed first so timingSafeEqual always sees 32 bytes,
 * whatever the length of the presented secret (a length check would leak).
 */
export function enrollmentSecretMatches(enrollmentKey: string, deviceId: string, secret: string): boolean {
  const expected = sha256(deriveEnrollmentSecret(enrollmentKey, deviceId));
  return timingSafeEqual(sha256(secret), expected);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Names an enrollment key without revealing it: the first 8 hex digits of
 * SHA-256 over the key. Enough to tell the current key from the previous ones
 * in the registry and the API, useless for deriving any device's secret.
 */
export function enrollmentKeyId(enrollmentKey: string): string {
  return sha256(`pulsewire-enrollment-key:${enrollmentKey}`).toString('hex').slice(0, 8);
}
