import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPulsewireError } from '../../src/errors/catalog.js';
import { DeviceRegistry, HUB_RESTART_REASON } from '../../src/registry/device-registry.js';
import { hashSecret, secretMatches } from '../../src/registry/secrets.js';

let dir: string;
let registry: DeviceRegistry;
let clock: number;

async function openRegistry(): Promise<DeviceRegistry> {
  return DeviceRegistry.open(path.join(dir, 'state'), { now: () => clock });
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-registry-'));
  clock = 1_700_000_000_000;
  registry = await openRegistry();
});

afterEach(async () => {
  await registry.close();
  await rm(dir, { recursive: true, force: true });
});

const ids = (page: { devices: { id: string }[] }) => page.devices.map((d) => d.id);

describe('register / get', () => {
  it('creates a device and returns its secret once, storing only the digest', async () => {
    const { id, secret } = await registry.register('sensor-1');
    expect(id).toBe('sensor-1');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const record = registry.get('sensor-1');
    expect(record).toEqual({
      id: 'sensor-1',
      secretDigest: hashSecret(secret),
      provisioning: 'registered',
      createdAt: clock,
      status: { online: false, messagesIn: 0 },
    });
    expect(JSON.stringify(record)).not.toContain(secret);
  });

  it('replaces the secret on a second register, keeping the record', async () => {
    const first = await registry.register('sensor-1');
    await registry.updateStatus('sensor-1', { messagesIn: 5 });
    clock += 1000;
    const second = await registry.register('sensor-1');
    expect(second.secret).not.toBe(first.secret);
    const record = registry.get('sensor-1')!;
    expect(secretMatches(second.secret, record.secretDigest)).toBe(true);
    expect(secretMatches(first.secret, record.secretDigest)).toBe(false);
    expect(record.createdAt).toBe(clock - 1000);
    expect(record.status.messagesIn).toBe(5);
  });

  it('returns undefined for unknown or malformed ids, and refuses to register a malformed one', async () => {
    expect(registry.get('nobody')).toBeUndefined();
    expect(registry.get('bad id')).toBeUndefined();
    await expect(registry.register('a/b')).rejects.toSatisfy((e) => isPulsewireError(e, 'PW_ERR_BAD_REQUEST'));
    await expect(registry.register('x'.repeat(65))).rejects.toSatisfy((e) => isPulsewireError(e, 'PW_ERR_BAD_REQUEST'));
    expect((await registry.register('x'.repeat(64))).id).toHaveLength(64);
  });

  it('persists across reopen', async () => {
    const { secret } = await registry.register('sensor-1');
    await registry.ensureProvisioned('fleet-7', 'enrollment');
    await registry.close();
    registry = await openRegistry();
    expect(secretMatches(secret, registry.get('sensor-1')?.secretDigest)).toBe(true);
    expect(registry.get('fleet-7')?.provisioning).toBe('enrollment');
  });
});

describe('remove', () => {
  it('deletes an operator-registered device outright', async () => {
    await registry.register('sensor-1');
    expect(await registry.remove('sensor-1')).toBe(true);
    expect(registry.get('sensor-1')).toBeUndefined();
    expect(await registry.remove('sensor-1')).toBe(false);
    // No tombstone: zero-touch provisioning may create it afresh.
    expect((await registry.ensureProvisioned('sensor-1', 'enrollment'))?.provisioning).toBe('enrollment');
  });

  it('returns false for unknown and malformed ids', async () => {
    expect(await registry.remove('nobody')).toBe(false);
    expect(await registry.remove('no body')).toBe(false);
  });

  it.each(['enrollment', 'certificate'] as const)('leaves a tombstone for a %s-provisioned device until it is registered again', async (how) => {
    await registry.ensureProvisioned('fleet-1', how);
    await registry.ensureProvisioned('fleet-2', how);
    expect(await registry.remove('fleet-1')).toBe(true);
    expect(registry.get('fleet-1')).toBeUndefined();
    expect(await registry.remove('fleet-1')).toBe(false);
    expect(await registry.ensureProvisioned('fleet-1', how)).toBeUndefined();
    expect(ids(registry.list({ limit: 10 }))).toEqual(['fleet-2']);
    await registry.updateStatus('fleet-1', { online: true });
    expect(registry.get('fleet-1')).toBeUndefined();

    // The tombstone survives a restart.
    await registry.close();
    registry = await openRegistry();
    expect(await registry.ensureProvisioned('fleet-1', how)).toBeUndefined();

    // A later PUT revives it, with its provisioning kept so a new removal tombstones again.
    const { secret } = await registry.register('fleet-1');
    const revived = registry.get('fleet-1')!;
    expect(revived.revoked).toBeUndefined();
    expect(secretMatches(secret, revived.secretDigest)).toBe(true);
    expect(revived.provisioning).toBe(how);
    expect(await registry.ensureProvisioned('fleet-1', how)).toMatchObject({ id: 'fleet-1', provisioning: how });
    expect(await registry.remove('fleet-1')).toBe(true);
    expect(await registry.ensureProvisioned('fleet-1', how)).toBeUndefined();
  });
});

describe('ensureProvisioned', () => {
  it('creates an unknown device once and returns the existing one afterwards', async () => {
    const created = await registry.ensureProvisioned('cert-1', 'certificate');
    expect(created).toEqual({ id: 'cert-1', provisioning: 'certificate', createdAt: clock, status: { online: false, messagesIn: 0 } });
    clock += 5000;
    const again = await registry.ensureProvisioned('cert-1', 'enrollment');
    expect(again?.provisioning).toBe('certificate');
    expect(again?.createdAt).toBe(clock - 5000);
  });

  it('does not overwrite a registered device', async () => {
    const { secret } = await registry.register('sensor-1');
    const record = await registry.ensureProvisioned('sensor-1', 'enrollment');
    expect(record?.provisioning).toBe('registered');
    expect(secretMatches(secret, registry.get('sensor-1')?.secretDigest)).toBe(true);
  });

  it('provisions a device once under concurrent first connections', async () => {
    const results = await Promise.all([registry.ensureProvisioned('d1', 'enrollment'), registry.ensureProvisioned('d1', 'certificate')]);
    expect(results.map((r) => r?.provisioning)).toEqual(['enrollment', 'enrollment']);
  });
});

describe('updateStatus', () => {
  it('merges into the status and persists it', async () => {
    await registry.register('sensor-1');
    await registry.updateStatus('sensor-1', { online: true, connectedAt: 10, lastSeen: 10, remoteAddress: '10.0.0.5' });
    await registry.updateStatus('sensor-1', { online: false, lastSeen: 20, offlineReason: 'ping-timeout', messagesIn: 42 });
    const expected = { online: false, connectedAt: 10, lastSeen: 20, remoteAddress: '10.0.0.5', offlineReason: 'ping-timeout', messagesIn: 42 };
    expect(registry.get('sensor-1')?.status).toEqual(expected);
    await registry.close();
    registry = await openRegistry();
    // Was offline at close, so the restart sweep leaves it untouched.
    expect(registry.get('sensor-1')?.status).toEqual(expected);
  });

  it('clears offlineReason when going online, and keys given as undefined', async () => {
    await registry.register('sensor-1');
    await registry.updateStatus('sensor-1', { online: false, offlineReason: 'closed by device', remoteAddress: '1.2.3.4' });
    await registry.updateStatus('sensor-1', { online: true });
    expect(registry.get('sensor-1')?.status.offlineReason).toBeUndefined();
    await registry.updateStatus('sensor-1', { remoteAddress: undefined });
    expect(registry.get('sensor-1')?.status).toEqual({ online: true, messagesIn: 0 });
  });

  it('keeps both updates when a disconnect follows a connect before the first commit', async () => {
    await registry.register('sensor-1');
    const connect = registry.updateStatus('sensor-1', { online: true, connectedAt: 10, remoteAddress: '10.0.0.5' });
    const disconnect = registry.updateStatus('sensor-1', { online: false, offlineReason: 'closed by device', messagesIn: 3 });
    // Read-your-writes before lmdb committed either one.
    expect(registry.get('sensor-1')?.status.offlineReason).toBe('closed by device');
    await Promise.all([connect, disconnect]);
    expect(registry.get('sensor-1')?.status).toEqual({
      online: false, connectedAt: 10, remoteAddress: '10.0.0.5', offlineReason: 'closed by device', messagesIn: 3,
    });
  });

  it('is a no-op for unknown devices', async () => {
    await registry.updateStatus('ghost', { online: true });
    expect(registry.get('ghost')).toBeUndefined();
    expect(registry.list({ limit: 10 }).devices).toEqual([]);
  });
});

describe('open after a crash', () => {
  it('marks devices left online as offline with reason "hub restart"', async () => {
    await registry.register('a');
    await registry.register('b');
    await registry.register('c');
    await registry.updateStatus('a', { online: true, connectedAt: 5, messagesIn: 2 });
    await registry.updateStatus('c', { online: false, offlineReason: 'ping-timeout' });
    // Closing the registry without disconnects is what a crash leaves on disk.
    await registry.close();
    registry = await openRegistry();
    expect(registry.get('a')?.status).toEqual({ online: false, connectedAt: 5, messagesIn: 2, offlineReason: HUB_RESTART_REASON });
    expect(registry.get('b')?.status).toEqual({ online: false, messagesIn: 0 });
    expect(registry.get('c')?.status.offlineReason).toBe('ping-timeout');
    expect(HUB_RESTART_REASON).toBe('hub restart');
  });
});

describe('list', () => {
  beforeEach(async () => {
    // Registered out of order: the page order must come from the keys.
    for (const id of ['b-2', 'a-10', 'c-1', 'a-2', 'b-1', 'a-1', 'ab']) await registry.register(id);
  });

  it('returns devices in key order', () => {
    expect(ids(registry.list({ limit: 100 }))).toEqual(['a-1', 'a-10', 'a-2', 'ab', 'b-1', 'b-2', 'c-1']);
    expect(registry.list({ limit: 100 }).nextCursor).toBeUndefined();
  });

  it('pages with an opaque cursor, with no gaps or repeats', () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    const pages: string[][] = [];
    do {
      const page = registry.list({ limit: 3, cursor });
      pages.push(ids(page));
      seen.push(...ids(page));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).toEqual([['a-1', 'a-10', 'a-2'], ['ab', 'b-1', 'b-2'], ['c-1']]);
    expect(seen).toHaveLength(7);
    // Exactly a full last page: no cursor pointing at an empty page.
    expect(registry.list({ limit: 7 }).nextCursor).toBeUndefined();
    expect(registry.list({ limit: 6 }).nextCursor).toBe(Buffer.from('b-2').toString('base64url'));
  });

  it('filters by prefix, also across pages', () => {
    expect(ids(registry.list({ limit: 100, prefix: 'a-' }))).toEqual(['a-1', 'a-10', 'a-2']);
    expect(ids(registry.list({ limit: 100, prefix: 'a' }))).toEqual(['a-1', 'a-10', 'a-2', 'ab']);
    expect(ids(registry.list({ limit: 100, prefix: 'zz' }))).toEqual([]);
    const first = registry.list({ limit: 2, prefix: 'a' });
    expect(ids(first)).toEqual(['a-1', 'a-10']);
    const second = registry.list({ limit: 2, prefix: 'a', cursor: first.nextCursor });
    expect(ids(second)).toEqual(['a-2', 'ab']);
    expect(second.nextCursor).toBeUndefined();
    // A cursor from before the prefix starts at the prefix.
    const before = Buffer.from('a-1').toString('base64url');
    expect(ids(registry.list({ limit: 100, prefix: 'b', cursor: before }))).toEqual(['b-1', 'b-2']);
    // A cursor past the prefix's range yields nothing.
    const after = Buffer.from('c-1').toString('base64url');
    expect(ids(registry.list({ limit: 100, prefix: 'b', cursor: after }))).toEqual([]);
  });

  it('filters by stored online status, or by a live isOnline callback', async () => {
    await registry.updateStatus('a-2', { online: true });
    await registry.updateStatus('b-2', { online: true });
    expect(ids(registry.list({ limit: 100, online: true }))).toEqual(['a-2', 'b-2']);
    expect(ids(registry.list({ limit: 100, online: false }))).toEqual(['a-1', 'a-10', 'ab', 'b-1', 'c-1']);
    const onlyFirst = registry.list({ limit: 1, online: true });
    expect(ids(onlyFirst)).toEqual(['a-2']);
    expect(ids(registry.list({ limit: 1, online: true, cursor: onlyFirst.nextCursor }))).toEqual(['b-2']);
    expect(ids(registry.list({ limit: 100, online: true, isOnline: (id) => id === 'c-1' }))).toEqual(['c-1']);
  });

  it('refuses limits outside 1..1000, bad prefixes and bad cursors', () => {
    const bad = (fn: () => unknown) => expect(fn).toThrow(expect.objectContaining({ code: 'PW_ERR_BAD_REQUEST' }));
    bad(() => registry.list({ limit: 0 }));
    bad(() => registry.list({ limit: 1001 }));
    bad(() => registry.list({ limit: 1.5 }));
    bad(() => registry.list({ limit: 10, prefix: 'a b' }));
    bad(() => registry.list({ limit: 10, cursor: '!!!' }));
    bad(() => registry.list({ limit: 10, cursor: Buffer.from('a b').toString('base64url') }));
    expect(registry.list({ limit: 1000 }).devices).toHaveLength(7);
    expect(ids(registry.list({ limit: 1, cursor: '' }))).toEqual(['a-1']);
  });
});
