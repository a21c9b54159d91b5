/**
 * A device's upgrade request (IncomingMessage, its headers, the head buffer)
 * is garbage once the device is connected. The upgrade gate's 'close'
 * listener once shared the 'upgrade' handler's closure context, so every
 * request stayed alive for as long as its connection: about 1.9 KB of heap
 * per device (heap snapshot probe, 5,000 devices). Weak references to each
 * request, then a full GC while the devices are still connected.
 */
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { collectGarbage } from '../support/gc.js';
import { until } from '../support/wait.js';

describe('device upgrade requests', () => {
  let hub: TestHub;
  const devices: TestDevice[] = [];

  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => {
    for (const device of devices) await device.close().catch(() => undefined);
    await hub?.close();
  });

  it('are not kept alive by a connected device', async () => {
    const requests: WeakRef<IncomingMessage>[] = [];
    // An observer ahead of the gate: Node hands every listener the same request.
    hub.app.server.prependListener('upgrade', (request: IncomingMessage) => { requests.push(new WeakRef(request)); });
    for (let i = 0; i < 20; i++) devices.push(await TestDevice.connect(hub.deviceUrl, { id: `upgrade-ret-${i}` }));
    expect(requests).toHaveLength(20);
    await until(() => (hub.app.gateway.runtimes.onlineCount >= 20 ? true : undefined));
    // A turn of the loop for what the accept left pending, then a full collection.
    await new Promise((resolve) => setTimeout(resolve, 100));
    collectGarbage();
    expect(requests.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    // Still connected: it is the request that went, not the device.
    expect(hub.app.gateway.runtimes.onlineCount).toBe(20);
  });
});
