/**
 * A data dir written by the hub before cluster mode (status inside each device
 * record, one state record per device, one target list per job) is moved to
 * today's layout once, at the first open, and reads as it did.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JobStore } from '../../src/jobs/job-store.js';
import { DeviceRegistry } from '../../src/registry/device-registry.js';
import { StateStore } from '../../src/state/state-store.js';
import { collect } from '../../src/stores/bucket.js';
import { openEnvironment, openLmdbStores } from '../../src/stores/open-lmdb-stores.js';
import { startServices } from '../support/services.js';
import { until } from '../support/wait.js';

describe('lmdb layout migration', () => {
  const dirs: string[] = [];
  afterEach(async () => { for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true }); });

  it('splits status from identity, reported from desired, finished commands from the queues, chunks job targets, and only once', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-migrate-'));
    dirs.push(dir);
    // The old layout, written as the old hub did (same environments and sub-databases).
    const state = openEnvironment(path.join(dir, 'state'));
    await state.bucket('devices').put('old-1', {
      id: 'old-1', secretDigest: 'ab'.repeat(32), provisioning: 'registered', createdAt: 1_700_000_000_000,
      status: { online: true, connectedAt: 5, lastSeen: 6, remoteAddress: '10.0.0.1', messagesIn: 42 },
    });
    await state.close();
    const commands = openEnvironment(path.join(dir, 'commands'));
    await commands.bucket('state').put('old-1', { reported: { fw: '1.0' }, desired: { rate: 5 }, version: 3, reportedAt: 10, desiredAt: 11 });
    await commands.bucket('state').put('old-2', { reported: {}, desired: {}, version: 0 });
    const targets = Array.from({ length: 12_001 }, (_, i) => `t-${i}`);
    await commands.bucket('jobTargets').put('j-old', targets);
    // Finished and unfinished commands shared one sub-database.
    const base = { deviceId: 'old-1', name: 'x', args: null, createdAt: Date.now(), ttlMs: 3_600_000, timeoutMs: 30_000 };
    await commands.bucket('commands').put(['old-1', 'c0001'], { ...base, id: 'c0001', status: 'succeeded', completedAt: Date.now() });
    await commands.bucket('commands').put(['old-1', 'c0002'], { ...base, id: 'c0002', status: 'queued' });
    await commands.close();

    const stores = await openLmdbStores(dir);
    const registry = new DeviceRegistry(stores);
    expect(await registry.get('old-1')).toEqual({
      id: 'old-1', secretDigest: 'ab'.repeat(32), provisioning: 'registered', createdAt: 1_700_000_000_000,
      status: { online: true, connectedAt: 5, lastSeen: 6, remoteAddress: '10.0.0.1', messagesIn: 42 },
    });
    expect((await stores.devices.get('old-1'))!.value).not.toHaveProperty('status');
    const stateStore = new StateStore(stores);
    expect(await stateStore.desired('old-1')).toEqual({ desired: { rate: 5 }, version: 3, desiredAt: 11 });
    expect(await stateStore.reported('old-1')).toEqual({ reported: { fw: '1.0' }, reportedAt: 10 });
    expect(await stores.desired.get('old-2')).toBeUndefined();
    expect(await new JobStore(stores).targets('j-old')).toEqual(targets);
    expect((await collect(stores.jobTargets.entries({ group: 'j-old' }))).length).toBe(3);
    // The finished command leaves the queue's bucket when the deadlines are armed (at start with one process).
    const hub = await startServices(stores);
    await until(async () => ((await stores.commandsDone.get(['old-1', 'c0001'])) ? true : undefined));
    expect((await hub.commands.store.queueOf('old-1')).map((c) => c.id)).toEqual(['c0002']);
    expect((await hub.commands.list('old-1', undefined, 10)).map((c) => c.status)).toEqual(['succeeded', 'queued']);
    await hub.stop();
    await stores.close();

    // Once: nothing of the old layout is left to move again.
    const again = openEnvironment(path.join(dir, 'commands'));
    expect(await collect(again.bucket('state').entries())).toEqual([]);
    expect(await collect(again.bucket('jobTargets').entries())).toEqual([]);
    await again.close();
    const reopened = await openLmdbStores(dir);
    expect((await new DeviceRegistry(reopened).get('old-1'))?.status.messagesIn).toBe(42);
    await reopened.close();
  });
});
