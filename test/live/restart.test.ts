import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub } from '../support/hub.js';
import { freshDatabase } from '../support/influx.js';
import { LiveClient } from './live-client.js';

describe('live snapshot after a restart', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => { for (const step of cleanup.reverse()) await step(); });

  it('lists devices known to the registry, offline with their last reason, before any of them reconnects', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-live-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const database = await freshDatabase('live');
    const first = await startHub({}, { dataDir, database });
    cleanup.push(() => first.close());
    await first.api('PUT', '/v1/devices/reg-never');
    const device = await TestDevice.connect(first.deviceUrl, { id: 'reg-gone' });
    await device.close();
    await first.close();

    const second = await startHub({}, { dataDir, database });
    cleanup.push(() => second.close());
    const live = await LiveClient.connect(second.baseUrl);
    const snapshot = await live.next((f) => f.type === 'snapshot');
    expect(snapshot.counts).toEqual({ online: 0, offline: 2 });
    expect(snapshot.devices).toContainEqual(expect.objectContaining({ device: 'reg-never', online: false, reason: 'never connected' }));
    expect(snapshot.devices).toContainEqual(expect.objectContaining({ device: 'reg-gone', online: false, reason: 'closed by device' }));
    await live.close();
  });
});
