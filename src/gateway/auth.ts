/**
 * Device authentication at the WebSocket handshake (protocol v1, section 2).
 * Decides who the device is; answering 401/429 and the upgrade itself is the
 * gateway's job.
 *
 * Every refusal is the same PW_ERR_DEVICE_AUTH, whether the device is
 * unknown, removed, or the secret is wrong, and each path does the same
 * digest work, so neither the answer nor its timing tells an attacker which
 * device ids exist. Only a device whose credentials are right learns that an
 * operator disabled it (403 PW_ERR_DEVICE_DISABLED).
 *
 * Which secrets work (docs/protocol.md, section 2): the registered one; the
 * one it replaced, until the rotation's grace period ends; the one derived
 * from any of the enrollment keys (current first, then previous ones), until
 * an operator issued the device its own secret without keeping enrollment.
 */

import { PulsewireError } from '../errors/catalog.js';
import { isValidDeviceId } from '../protocol/limits.js';
import type { DeviceIdentity, DeviceRegistry } from '../registry/device-registry.js';
import { enrollmentKeyId, enrollmentSecretMatches, secretMatches } from '../registry/secrets.js';

export interface BasicCredentials {
  deviceId: string;
  secret: string;
}

export type AuthMethod = 'secret' | 'enrollment' | 'certificate';

export interface AuthInput {
  /** The raw Authorization header. */
  authorization?: string;
  /** The TLS peer certificate, when the hub verifies client certificates. */
  certificate?: { authorized: boolean; subjectCN?: string };
}

export interface AuthDeps {
  registry: DeviceRegistry;
  /** The current key first, then previous ones still honoured; none: no enrollment. */
  enrollmentKeys?: readonly string[];
  now?: () => number;
}

export type AuthSuccess = {
  ok: true;
  deviceId: string;
  method: AuthMethod;
  /** The identity's rotation count the session authenticated under (credential-watch.ts). */
  credentialsVersion: number;
  /** Set when the secret used stops working at this time (a grace period): the session is closed then. */
  validUntil?: number;
};

export type AuthResult = AuthSuccess | { ok: false; error: PulsewireError };

/**
 * Longest secret worth hashing. Hub-issued and derived secrets are 43
 * characters; the cap only keeps an attacker from making us hash megabytes.
 */
const MAX_SECRET_LENGTH = 1024;

/** RFC 7235 token68 as base64 (RFC 4648 section 4) uses; padding optional. */
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const BASIC = /^basic[ ]+(\S+)[ ]*$/i;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The credentials of an RFC 7617 Basic Authorization header, or null when
 * the header is missing, another scheme, not base64, not UTF-8, has no
 * colon, an invalid device id or an empty secret. The id ends at the FIRST
 * colon (ids cannot contain one); the secret may contain colons.
 */
export function parseBasicAuthorization(header: string | undefined): BasicCredentials | null {
  if (header === undefined) return null;
  const token = BASIC.exec(header.trim())?.[1];
  if (token === undefined || !BASE64.test(token) || token.length % 4 === 1) return null;
  let decoded: string;
  try {
    decoded = strictUtf8.decode(Buffer.from(token, 'base64'));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const deviceId = decoded.slice(0, colon);
  const secret = decoded.slice(colon + 1);
  if (!isValidDeviceId(deviceId) || secret.length === 0 || secret.length > MAX_SECRET_LENGTH) return null;
  return { deviceId, secret };
}

/**
 * Authenticates a device: first a verified client certificate whose subject
 * CN is a valid device id, then Basic credentials against the registered
 * secret, then against the secret derived from the enrollment key. Devices
 * authenticated by certificate or enrollment key are registered on first
 * use, unless they were removed (tombstone).
 */
export async function authenticateDevice(input: AuthInput, deps: AuthDeps): Promise<AuthResult> {
  const { registry, enrollmentKeys = [] } = deps;
  const now = (deps.now ?? Date.now)();
  const cert = input.certificate;
  if (cert?.authorized && isValidDeviceId(cert.subjectCN)) {
    // The CA vouches for the id; a tombstone still wins over the certificate.
    const record = await registry.ensureProvisioned(cert.subjectCN, 'certificate');
    return record ? admit(record, 'certificate') : refuse();
  }

  const credentials = parseBasicAuthorization(input.authorization);
  if (!credentials) return refuse();
  const { deviceId, secret } = credentials;

  // Unknown and removed devices compare against a dummy digest inside
  // secretMatches, so this costs the same as a wrong secret; the previous
  // secret is compared (against the dummy when there is none) for the same reason.
  const record = await registry.identity(deviceId);
  if (secretMatches(secret, record?.secretDigest)) return admit(record!, 'secret');
  const inGrace = record?.previousSecretUntil !== undefined && now < record.previousSecretUntil;
  if (secretMatches(secret, inGrace ? record.previousSecretDigest : undefined)) return admit(record!, 'secret', record!.previousSecretUntil);
  // Every key is tried, whichever matches: the work does not tell which keys a fleet has.
  // An empty key is treated as none: it would be a fleet-wide guessable key.
  let matched: string | undefined;
  for (const key of enrollmentKeys) if (key !== '' && enrollmentSecretMatches(key, deviceId, secret) && matched === undefined) matched = key;
  if (matched === undefined) return refuse();
  const endsAt = record?.enrollmentEndsAt;
  if (endsAt !== undefined && now >= endsAt) return refuse();
  const keyId = enrollmentKeyId(matched);
  const provisioned = await registry.ensureProvisioned(deviceId, 'enrollment', keyId);
  if (!provisioned) return refuse();
  // A write only when the device moved to another key (or was enrolled before keys were recorded).
  if (provisioned.enrollmentKeyId !== keyId) await registry.noteEnrollmentKey(deviceId, keyId);
  return admit(provisioned, 'enrollment', endsAt);
}

function admit(identity: DeviceIdentity, method: AuthMethod, validUntil?: number): AuthResult {
  if (identity.disabled) return { ok: false, error: new PulsewireError('PW_ERR_DEVICE_DISABLED', identity.id) };
  return {
    ok: true, deviceId: identity.id, method, credentialsVersion: identity.credentialsVersion ?? 0, ...(validUntil !== undefined ? { validUntil } : {}),
  };
}

function refuse(): AuthResult {
  return { ok: false, error: new PulsewireError('PW_ERR_DEVICE_AUTH') };
}
