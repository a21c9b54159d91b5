/**
 * One hub node with NATS and no other node: what a first node of a cluster,
 * or a cluster shrunk to one, does alone. The two-node tests cannot show it:
 * there the other node answers every cross-node request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveClient, telemetry } from '../live/live-client.js';
import { TestDevice } from '../support/device-client.js';
import { freshDatabase } from '../support/influx.js';
import { startHub, type TestHub } from '../support/hub.js';
import { uniqueNamespace } from '../support/nats.js';
import { clusterNodeEnv } from '../support/two-nodes.js';

describe('one node of a cluster, alone', () => {
  let hub: TestHub;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    hub = await startHub(clusterNodeEnv(uniqueNamespace('one'), 'node-a'), { database: await freshDatabase('cluster-one') });
  });

  afterAll(async () => {
    for (const device of devices) await device.close().catch(() => undefined);
    await hub?.close();
  });

  it('streams its own devices\' readings to its dashboard', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'solo-1' });
    devices.push(device);
    const live = await LiveClient.connect(hub.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    device.send(telemetry(1, { temp: 20.5 }));
    const frame = await live.next((f) => f.type === 'events' && (f.readings ?? []).length > 0, 15_000);
    expect(frame.readings.map((r: { device: string; name: string; v: number }) => [r.device, r.name, r.v])).toEqual([['solo-1', 'temp', 20.5]]);
    await live.close();
  });
});
