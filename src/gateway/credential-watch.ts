/**
 * Ends device sessions whose credentials no longer hold, on whichever node
 * holds them: the registry's identities are watched (with one process, lmdb's
 * own writes; in a cluster, every node's, through the JetStream bucket), and
 * a session held here is closed
 * - with 1008 (PW_ERR_DEVICE_DISABLED) once its device is disabled;
 * - with 4001 (PW_ERR_REAUTHENTICATE, "authenticate again") once its device
 *   was given a new secret after the session authenticated: the session knows
 *   the rotation count it authenticated under, so one that authenticated with
 *   the new secret is left alone, whatever the clocks say.
 * A session let in with a secret that only works until a grace period ends
 * is closed with 4001 at that time (`closeAtGraceEnd`).
 * Removal is not handled here: the DELETE route and presence close those (1008).
 */
import { atDeadline } from '../commands/deadline.js';
import { PulsewireError } from '../errors/catalog.js';
import type { DeviceIdentity } from '../registry/device-registry.js';
import type { Bucket } from '../stores/bucket.js';
import type { DeviceRuntimes } from './device-runtime.js';
import type { DeviceSession } from './device-session.js';

type Kick = (deviceId: string, closeCode: number, reason: string) => void;

export function watchCredentials(devices: Bucket<DeviceIdentity>, runtimes: DeviceRuntimes, kick: Kick): () => void {
  return devices.watch((change) => {
    const identity = change.value;
    if (!identity || identity.revoked) return;
    const session = runtimes.peek(identity.id)?.session as { credentialsVersion?: number } | undefined;
    if (!session) return;
    const err = staleBy(identity, session);
    if (err) kick(identity.id, err.spec.close!, err.closeReason);
  });
}

/**
 * For a session just accepted: its handshake read the identity before a
 * rotation or a disable whose change the watch reported while the session
 * did not exist yet. Read again once accepted, it is closed like the others.
 */
export function recheckAfterAccept(session: DeviceSession, current: DeviceIdentity | undefined): void {
  const err = current && !current.revoked ? staleBy(current, session) : undefined;
  if (err) session.end(err.spec.close!, err.closeReason, 'kicked');
}

/** Why a session no longer holds under `identity`; undefined while it does. */
function staleBy(identity: DeviceIdentity, session: { credentialsVersion?: number | undefined }): PulsewireError | undefined {
  if (identity.disabled) return new PulsewireError('PW_ERR_DEVICE_DISABLED');
  // HTTP fallback links carry no count: each request authenticates anew.
  if (session.credentialsVersion !== undefined && (identity.credentialsVersion ?? 0) > session.credentialsVersion) {
    return new PulsewireError('PW_ERR_REAUTHENTICATE');
  }
  return undefined;
}

/** Closes the session with 4001 when the secret it used stops working. */
export function closeAtGraceEnd(session: DeviceSession, validUntil: number): void {
  const deadline = atDeadline(validUntil, () => {
    const err = new PulsewireError('PW_ERR_REAUTHENTICATE', 'the secret this connection used has expired; authenticate again');
    session.end(err.spec.close!, err.closeReason, 'kicked');
  });
  session.onClosed(() => deadline.cancel());
}
