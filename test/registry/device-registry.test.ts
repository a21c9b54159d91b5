/**
 * The device registry on every backend (lmdb with one process, JetStream in a
 * cluster): identity records, tombstones, enrolment races, paging.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPulsewireError } from '../../src/errors/catalog.js';
import { DevicePresence } from '../../src/presence/device-presence.js';
import { DeviceRegistry } from '../../src/registry/device-registry.js';
import { hashSecret, secretMatches } from '../../src/registry/secrets.js';
import { BACKENDS, type StoresHandle } from '../support/stores.js';

describe.each(BACKENDS)('device registry on $name', (backend) => {
let handle: StoresHandle;
let registry: DeviceRegistry;
let presence: DevicePresence;
let clock: number;

function openRegistry(): void {
  registry = new DeviceRegistry(handle.stores, { now: () => clock });
  presence = new DevicePresence(handle.stores.deviceStatus, 'node-a');
}

async function reopen(): Promise<void> {
  await handle.reopen();
  openRegistry();
}

/** What a node holding the device writes (presence), as the gateway would. */
async function connectAndLeave(id: string, messagesIn: number): Promise<void> {
  const { claim } = await presence.claim(id, { connectedAt: clock, remoteAddress: '10.0.0.5' });
  await presence.release(claim, { reason: 'closed by device', lastSeen: clock, messagesIn });
}

beforeEach(async () => {
  handle = await backend.open();
  clock = 1_700_000_000_000;
  openRegistry();
});

afterEach(async () => {
  await handle.close();
});

const ids = (page: { devices: { id: string }[] }) => page.devices.map((d) => d.id);

describe('register / get', () => {
  it('creates a device and returns its secret once, storing only the digest', async () => {
    const { id, secret } = await registry.register('sensor-1');
    expect(id).toBe('sensor-1');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const record = await registry.get('sensor-1');
    expect(record).toEqual({
      id: 'sensor-1',
      secretDigest: hashSecret(secret),
      provisioning: 'registered',
      createdAt: clock,
      status: { online: false, messagesIn: 0 },
    });
    expect(JSON.stringify(record)).not.toContain(secret);
  });

  it('replaces the secret on a second register, keeping the record and its status', async () => {
    const first = await registry.register('sensor-1');
    await connectAndLeave('sensor-1', 5);
    clock += 1000;
    const second = await registry.register('sensor-1');
    expect(second.secret).not.toBe(first.secret);
    const record = (await registry.get('sensor-1'))!;
    expect(secretMatches(second.secret, record.secretDigest)).toBe(true);
    expect(secretMatches(first.secret, record.secretDigest)).toBe(false);
    expect(record.createdAt).toBe(clock - 1000);
    expect(record.status.messagesIn).toBe(5);
  });

  it('returns undefined for unknown or malformed ids, and refuses to register a malformed one', async () => {
    expect(await registry.get('nobody')).toBeUndefined();
    expect(await registry.get('bad id')).toBeUndefined();
    await expect(registry.register('a/b')).rejects.toSatisfy((e) => isPulsewireError(e, 'PW_ERR_BAD_REQUEST'));
    await expect(registry.register('x'.repeat(65))).rejects.toSatisfy((e) => isPulsewireError(e, 'PW_ERR_BAD_REQUEST'));
    expect((await registry.register('x'.repeat(64))).id).toHaveLength(64);
  });

  it('persists across reopen', async () => {
    const { secret } = await registry.register('sensor-1');
    await registry.ensureProvisioned('fleet-7', 'enrollment');
    await reopen();
    expect(secretMatches(secret, (await registry.get('sensor-1'))?.secretDigest)).toBe(true);
    expect((await registry.get('fleet-7'))?.provisioning).toBe('enrollment');
  });

  it('gives two concurrent registrations two secrets, of which the one stored last works', async () => {
    const [a, b] = await Promise.all([registry.register('race-1'), registry.register('race-1')]);
    const digest = (await registry.get('race-1'))!.secretDigest;
    expect([secretMatches(a.secret, digest), secretMatches(b.secret, digest)].filter(Boolean)).toHaveLength(1);
  });
});

describe('remove', () => {
  it('deletes an operator-registered device outright', async () => {
    await registry.register('sensor-1');
    expect(await registry.remove('sensor-1')).toBe(true);
    expect(await registry.get('sensor-1')).toBeUndefined();
    expect(await registry.remove('sensor-1')).toBe(false);
    // No tombstone: zero-touch provisioning may create it afresh, with a fresh status.
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
    expect(await registry.get('fleet-1')).toBeUndefined();
    expect(await registry.remove('fleet-1')).toBe(false);
    expect(await registry.ensureProvisioned('fleet-1', how)).toBeUndefined();
    expect(ids(await registry.list({ limit: 10 }))).toEqual(['fleet-2']);

    // The tombstone survives a restart.
    await reopen();
    expect(await registry.ensureProvisioned('fleet-1', how)).toBeUndefined();

    // A later PUT revives it, with its provisioning kept so a new removal tombstones again.
    const { secret } = await registry.register('fleet-1');
    const revived = (await registry.get('fleet-1'))!;
    expect(revived.revoked).toBeUndefined();
    expect(secretMatches(secret, revived.secretDigest)).toBe(true);
    expect(revived.provisioning).toBe(how);
    expect(revived.status).toMatchObject({ online: false, messagesIn: 0 });
    expect(revived.status.offlineReason).toBeUndefined();
    expect(await registry.ensureProvisioned('fleet-1', how)).toMatchObject({ id: 'fleet-1', provisioning: how });
    expect(await registry.remove('fleet-1')).toBe(true);
    expect(await registry.ensureProvisioned('fleet-1', how)).toBeUndefined();
  });

  it('takes a removed device out of its holder\'s claim: the holder\'s release writes nothing', async () => {
    await registry.register('held-1');
    const { claim } = await presence.claim('held-1', { connectedAt: clock, remoteAddress: '10.0.0.9' });
    expect(await registry.remove('held-1')).toBe(true);
    expect(await presence.release(claim, { reason: 'kicked', lastSeen: clock, messagesIn: 1 })).toBe(false);
    expect((await presence.status('held-1'))).toMatchObject({ online: false, offlineReason: 'removed' });
  });
});

describe('ensureProvisioned', () => {
  it('creates an unknown device once and returns the existing one afterwards', async () => {
    const created = await registry.ensureProvisioned('cert-1', 'certificate');
    expect(created).toEqual({ id: 'cert-1', provisioning: 'certificate', createdAt: clock });
    clock += 5000;
    const again = await registry.ensureProvisioned('cert-1', 'enrollment');
    expect(again?.provisioning).toBe('certificate');
    expect(again?.createdAt).toBe(clock - 5000);
  });

  it('does not overwrite a registered device', async () => {
    const { secret } = await registry.register('sensor-1');
    const record = await registry.ensureProvisioned('sensor-1', 'enrollment');
    expect(record?.provisioning).toBe('registered');
    expect(secretMatches(secret, (await registry.get('sensor-1'))?.secretDigest)).toBe(true);
  });

  it('provisions a device once under concurrent first connections', async () => {
    const results = await Promise.all([registry.ensureProvisioned('d1', 'enrollment'), registry.ensureProvisioned('d1', 'certificate')]);
    expect(results.map((r) => r?.provisioning)).toEqual(['enrollment', 'enrollment']);
  });
});

describe('list', () => {
  beforeEach(async () => {
    // Registered out of order: the page order must come from the keys.
    for (const id of ['b-2', 'a-10', 'c-1', 'a-2', 'b-1', 'a-1', 'ab']) await registry.register(id);
  });

  it('returns devices in key order', async () => {
    expect(ids(await registry.list({ limit: 100 }))).toEqual(['a-1', 'a-10', 'a-2', 'ab', 'b-1', 'b-2', 'c-1']);
    expect((await registry.list({ limit: 100 })).nextCursor).toBeUndefined();
  });

  it('pages with an opaque cursor, with no gaps or repeats', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    const pages: string[][] = [];
    do {
      const page = await registry.list({ limit: 3, ...(cursor ? { cursor } : {}) });
      pages.push(ids(page));
      seen.push(...ids(page));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).toEqual([['a-1', 'a-10', 'a-2'], ['ab', 'b-1', 'b-2'], ['c-1']]);
    expect(seen).toHaveLength(7);
    // Exactly a full last page: no cursor pointing at an empty page.
    expect((await registry.list({ limit: 7 })).nextCursor).toBeUndefined();
    expect((await registry.list({ limit: 6 })).nextCursor).toBe(Buffer.from('b-2').toString('base64url'));
  });

  it('filters by prefix, also across pages', async () => {
    expect(ids(await registry.list({ limit: 100, prefix: 'a-' }))).toEqual(['a-1', 'a-10', 'a-2']);
    expect(ids(await registry.list({ limit: 100, prefix: 'a' }))).toEqual(['a-1', 'a-10', 'a-2', 'ab']);
    expect(ids(await registry.list({ limit: 100, prefix: 'zz' }))).toEqual([]);
    const first = await registry.list({ limit: 2, prefix: 'a' });
    expect(ids(first)).toEqual(['a-1', 'a-10']);
    const second = await registry.list({ limit: 2, prefix: 'a', cursor: first.nextCursor! });
    expect(ids(second)).toEqual(['a-2', 'ab']);
    expect(second.nextCursor).toBeUndefined();
    // A cursor from before the prefix starts at the prefix.
    const before = Buffer.from('a-1').toString('base64url');
    expect(ids(await registry.list({ limit: 100, prefix: 'b', cursor: before }))).toEqual(['b-1', 'b-2']);
    // A cursor past the prefix's range yields nothing.
    const after = Buffer.from('c-1').toString('base64url');
    expect(ids(await registry.list({ limit: 100, prefix: 'b', cursor: after }))).toEqual([]);
  });

  it('filters by stored online status, or by a live isOnline callback', async () => {
    await presence.claim('a-2', { connectedAt: clock, remoteAddress: '10.0.0.1' });
    await presence.claim('b-2', { connectedAt: clock, remoteAddress: '10.0.0.2' });
    expect(ids(await registry.list({ limit: 100, online: true }))).toEqual(['a-2', 'b-2']);
    expect(ids(await registry.list({ limit: 100, online: false }))).toEqual(['a-1', 'a-10', 'ab', 'b-1', 'c-1']);
    const onlyFirst = await registry.list({ limit: 1, online: true });
    expect(ids(onlyFirst)).toEqual(['a-2']);
    expect(ids(await registry.list({ limit: 1, online: true, cursor: onlyFirst.nextCursor! }))).toEqual(['b-2']);
    expect(ids(await registry.list({ limit: 100, online: true, isOnline: (record) => record.id === 'c-1' }))).toEqual(['c-1']);
  });

  it('refuses limits outside 1..1000, bad prefixes and bad cursors', async () => {
    const bad = (fn: () => Promise<unknown>) => expect(fn()).rejects.toMatchObject({ code: 'PW_ERR_BAD_REQUEST' });
    await bad(() => registry.list({ limit: 0 }));
    await bad(() => registry.list({ limit: 1001 }));
    await bad(() => registry.list({ limit: 1.5 }));
    await bad(() => registry.list({ limit: 10, prefix: 'a b' }));
    await bad(() => registry.list({ limit: 10, cursor: '!!!' }));
    await bad(() => registry.list({ limit: 10, cursor: Buffer.from('a b').toString('base64url') }));
    expect((await registry.list({ limit: 1000 })).devices).toHaveLength(7);
    expect(ids(await registry.list({ limit: 1, cursor: '' }))).toEqual(['a-1']);
  });
});
});
