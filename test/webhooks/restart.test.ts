/**
 * The outbox across the end of a hub: events queued while the receiver
 * fails are delivered, in order, by the next hub on the same data dir:
 * - after a graceful close (in this process, restartableHub);
 * - after `kill -9` of a real hub process (src/main.ts). The kill comes
 *   after a barrier: a PATCH of the endpoint is answered once committed, and
 *   lmdb commits the webhooks environment in order, so the events queued
 *   before it are on disk; the test asserts what the hub promised.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHubProcess, type HubProcess } from '../support/hub-process.js';
import { ENROLLMENT_KEY, operatorRequest, restartableHub } from '../support/hub.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { sleep, waitFor } from '../support/wait.js';
import { Receiver } from './receiver.js';

const ENV = {
  PULSEWIRE_WEBHOOK_ALLOW_PRIVATE: 'true',
  PULSEWIRE_WEBHOOK_BACKOFF_MS: '50',
  PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS: '200',
  PULSEWIRE_WEBHOOK_RETRY_FOR_MS: '600000',
  PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY,
};

/**
 * What the receiver saw, deduplicated by event id as receivers do. A request the old hub sent just before it
 * stopped may reach the receiver's handler only after the test switched it to answering 2xx: the hub never heard
 * that answer, so the next hub sends the event again (at least once). Repeats are allowed, nothing else.
 */
const seen = (receiver: Receiver) => {
  const firsts = new Map<string, string>();
  for (const r of receiver.received) if (!firsts.has(r.event.id)) firsts.set(r.event.id, `${r.event.type} ${r.event.data.deviceId}`);
  return [...firsts.values()];
};

describe('webhook outbox across restarts', () => {
  const receivers: Receiver[] = [];
  afterAll(async () => {
    for (const r of receivers) await r.close();
  });

  it('delivers what was queued before a graceful close after the next start, in order', async () => {
    const receiver = await Receiver.start();
    receivers.push(receiver);
    receiver.mode = { kind: 'status', status: 503 };
    const hubs = await restartableHub('webhook-restart');
    try {
      const first = await hubs.start(ENV);
      const { id } = (await first.api('POST', '/v1/webhooks', { url: receiver.url, events: ['device.online', 'device.offline'] })).body;
      for (const device of ['gr-1', 'gr-2']) (await TestDevice.connect(first.deviceUrl, { id: device })).socket.terminate();
      await waitFor(async () => (await first.api('GET', `/v1/webhooks/${id}`)).body.queued === 4, { what: 'four events queued' });
      await first.close();
      const ids = receiver.received.length;
      expect(ids).toBe(0);

      receiver.mode = { kind: 'ok' };
      const second = await hubs.start(ENV);
      await waitFor(() => receiver.received.length >= 4, { what: 'delivered after restart' });
      await sleep(200);
      const got = seen(receiver);
      expect(got, JSON.stringify(receiver.received.map((r) => [r.event.id, r.event.type, r.event.data.deviceId]))).toHaveLength(4);
      // Each device's online comes before its offline, and gr-1's events before gr-2's offline.
      expect(got.indexOf('device.online gr-1')).toBeLessThan(got.indexOf('device.offline gr-1'));
      expect(got.indexOf('device.online gr-2')).toBeLessThan(got.indexOf('device.offline gr-2'));
      expect(receiver.received.length, 'at most the one request in flight at the stop repeated').toBeLessThanOrEqual(5);
      expect((await second.api('GET', `/v1/webhooks/${id}`)).body.queued).toBe(0);
    } finally {
      await hubs.close();
    }
  });

  describe('kill -9 of the hub process', () => {
    let dataDir: string;
    let db: FreshDatabase;
    const processes: HubProcess[] = [];
    afterAll(async () => {
      for (const hub of processes) await hub.kill('SIGTERM');
      await db?.drop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('delivers the events queued before the kill, in order, once the hub is back', async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-webhook-kill-'));
      db = await freshDatabase('webhook_kill');
      const receiver = await Receiver.start();
      receivers.push(receiver);
      receiver.mode = { kind: 'status', status: 503 };
      const start = async () => {
        const hub = await startHubProcess({ dataDir, env: { ...ENV, PULSEWIRE_INFLUX_URL: db.url } });
        processes.push(hub);
        return hub;
      };
      const before = await start();
      const api = (hub: HubProcess, method: string, route: string, body?: unknown) => operatorRequest(hub.baseUrl, method, route, body);
      const { id } = (await api(before, 'POST', '/v1/webhooks', { url: receiver.url, events: ['device.online', 'device.offline'] })).body;
      const expected: string[] = [];
      for (const device of ['kill-1', 'kill-2', 'kill-3']) {
        const connected = await TestDevice.connect(before.deviceUrl, { id: device });
        await connected.close();
        await waitFor(async () => (await api(before, 'GET', `/v1/devices/${device}`)).body.online === false, { what: `${device} offline` });
        expected.push(`device.online ${device}`, `device.offline ${device}`);
      }
      await waitFor(async () => (await api(before, 'GET', `/v1/webhooks/${id}`)).body.queued === 6, { what: 'six events queued' });
      expect((await api(before, 'PATCH', `/v1/webhooks/${id}`, { description: 'barrier' })).status).toBe(200);
      await waitFor(() => receiver.arrived >= 1, { what: 'a failed attempt before the kill' });
      expect(await before.kill('SIGKILL')).toBeNull();
      expect(receiver.received).toHaveLength(0);

      receiver.mode = { kind: 'ok' };
      const after = await start();
      await waitFor(() => receiver.received.length >= expected.length, { what: 'delivered after the kill', timeoutMs: 30_000 });
      await sleep(200);
      expect(seen(receiver)).toEqual(expected);
      expect(receiver.received.length, 'at most the one request in flight at the kill repeated').toBeLessThanOrEqual(expected.length + 1);
      expect((await api(after, 'GET', `/v1/webhooks/${id}`)).body).toMatchObject({ queued: 0, description: 'barrier' });
    });
  });
});
