/**
 * The form of an operator API key as a caller holds it:
 * `pwk_<id>_<secret>`, the id 16 hex digits that name the key's record, the
 * secret 32 random bytes (base64url). Only the SHA-256 digest of the secret is
 * stored: 256 random bits need no slow hash, and a copy of the store lets
 * nobody in. The id travels in the clear so a request finds its record with
 * one read, not a scan, and the secret is compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN = /^pwk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export type KeyMaterial = { id: string; token: string; digest: string };

export function newKeyMaterial(): KeyMaterial {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `pwk_${id}_${secret}`, digest: secretDigest(secret) };
}

/** The id and secret of something that looks like a key; undefined for anything else. */
export function parseKeyToken(token: string): { id: string; secret: string } | undefined {
  const match = TOKEN.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

export function secretDigest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, digest: string): boolean {
  const given = Buffer.from(secretDigest(secret), 'hex');
  const stored = Buffer.from(digest, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}

