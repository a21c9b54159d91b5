/**
 * Webhooks on two nodes of one cluster (two hubs in this process sharing the
 * suite's real nats-server and JetStream): an endpoint registered on one node
 * gets the events of devices on both, each exactly once (the node where an
 * event arose records it; the other hears it on the bridged bus and does
 * not), delivered by the one node holding the `webhooks` lease; when that
 * node stops, the other takes the lease over and delivers what follows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { startTwoNodes } from '../support/two-nodes.js';
import { sleep, until, waitFor } from '../support/wait.js';
import { Receiver } from './receiver.js';

describe('webhooks in a cluster of two nodes', () => {
  const hubs: TestHub[] = [];
  let a: TestHub;
  let b: TestHub;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await Receiver.start();
    [a, b] = await startTwoNodes(hubs, 'w', { PULSEWIRE_WEBHOOK_ALLOW_PRIVATE: 'true', PULSEWIRE_WEBHOOK_BACKOFF_MS: '50', PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS: '200' });
  });
  afterAll(async () => {
    for (const hub of hubs.reverse()) await hub.close();
    await receiver?.close();
  });

  const cycle = async (hub: TestHub, id: string) => {
    const device = await TestDevice.connect(hub.deviceUrl, { id });
    await until(async () => ((await a.api('GET', `/v1/devices/${id}`)).body.online === true ? true : undefined));
    await device.close();
  };
  const keys = () => receiver.received.map((r) => `${r.event.type} ${r.event.data.deviceId}`).sort();

  it('delivers each event of either node exactly once, from the lease holder, and the other node takes over when it stops', async () => {
    const created = await a.api('POST', '/v1/webhooks', { url: receiver.url, events: ['device.online', 'device.offline'] });
    expect(created.status).toBe(201);
    await waitFor(() => b.app.webhooks.endpoints.cached(created.body.id) !== undefined, { what: 'node b knows the endpoint' });
    expect((await b.api('GET', `/v1/webhooks/${created.body.id}`)).body.url).toBe(receiver.url);

    await cycle(a, 'on-a');
    await cycle(b, 'on-b');
    await waitFor(() => receiver.received.length >= 4, { what: 'four events delivered' });
    await sleep(500);
    expect(keys()).toEqual(['device.offline on-a', 'device.offline on-b', 'device.online on-a', 'device.online on-b']);
    expect(new Set(receiver.acceptedIds).size).toBe(4);
    const delivered = [a, b].map((hub) => hub.app.webhooks.deliverer.stats.delivered);
    expect(delivered.filter((n) => n > 0)).toHaveLength(1);
    expect(delivered[0]! + delivered[1]!).toBe(4);

    // The node delivering stops; the other takes the lease over and delivers what happens next.
    const holder = delivered[0]! > 0 ? a : b;
    const survivor = holder === a ? b : a;
    await holder.close();
    const survivorDevice = await TestDevice.connect(survivor.deviceUrl, { id: 'after-takeover' });
    await waitFor(() => receiver.received.some((r) => r.event.data.deviceId === 'after-takeover'), { what: 'delivered by the survivor', timeoutMs: 30_000 });
    await survivorDevice.close();
    await waitFor(() => receiver.received.length >= 6, { what: 'offline delivered by the survivor', timeoutMs: 30_000 });
    await sleep(300);
    expect(survivor.app.webhooks.deliverer.stats.delivered).toBeGreaterThanOrEqual(2);
    expect(new Set(receiver.acceptedIds).size).toBe(receiver.received.length);
    expect(receiver.received.filter((r) => r.event.data.deviceId === 'after-takeover').map((r) => r.event.type)).toEqual(['device.online', 'device.offline']);
  });
});
