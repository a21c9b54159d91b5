/**
 * Two hub nodes in this process, sharing one cluster through the suite's real
 * nats-server (JetStream) and one InfluxDB database, each with its own data
 * dir (spool). The same behaviours over real hub processes behind nginx are in
 * cluster.test.ts; these are the quick ones to debug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeResult, encodeTelemetry } from '../../src/protocol/encode.js';
import { LiveClient, telemetry } from '../live/live-client.js';
import { TestDevice } from '../support/device-client.js';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';
import { startTwoNodes } from '../support/two-nodes.js';
import { until } from '../support/wait.js';

describe('two nodes of one cluster', () => {
  const hubs: TestHub[] = [];
  let a: TestHub;
  let b: TestHub;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    [a, b] = await startTwoNodes(hubs, 'c');
  });

  afterAll(async () => {
    for (const device of devices) await device.close().catch(() => undefined);
    for (const hub of hubs.reverse()) await hub.close();
  });

  const connect = async (hub: TestHub, id: string) => {
    const device = await TestDevice.connect(hub.deviceUrl, { id });
    devices.push(device);
    return device;
  };

  it('a device registered through one node authenticates on the other, and both list it online', async () => {
    const put = await a.api('PUT', '/v1/devices/reg-1');
    expect(put.status).toBe(201);
    const registered = await TestDevice.connect(b.deviceUrl, { id: 'reg-1', secret: put.body.secret });
    devices.push(registered);
    for (const hub of [a, b]) {
      await until(async () => ((await hub.api('GET', '/v1/devices/reg-1')).body.online === true ? true : undefined));
    }
    const listed = await a.api('GET', '/v1/devices?online=true&prefix=reg-');
    expect(listed.body.devices.map((d: { id: string }) => d.id)).toEqual(['reg-1']);
  });

  it('a command posted to one node reaches the device on the other, and ?wait on the first returns its result', async () => {
    const device = await connect(b, 'cmd-1');
    await until(async () => ((await a.api('GET', '/v1/devices/cmd-1')).body.online === true ? true : undefined));
    const waited = a.api('POST', '/v1/devices/cmd-1/commands?wait=20', { name: 'blink', args: { times: 2 } });
    const command = await device.next();
    expect(command).toMatchObject({ type: 3, name: 'blink' });
    device.send(encodeResult((command as { commandId: string }).commandId, 1, 'done'));
    const answered = await waited;
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ status: 'succeeded', result: 'done' });
    const onB = await b.api('GET', `/v1/devices/cmd-1/commands/${answered.body.id}`);
    expect(onB.body.status).toBe('succeeded');
  });

  it('a dashboard on one node sees the readings of a device on the other, with its filter honoured', async () => {
    const watched = await connect(a, 'live-1');
    const other = await connect(a, 'live-2');
    const live = await LiveClient.connect(b.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    live.send({ type: 'subscribe', devices: ['live-1'] });
    await live.next((f) => f.type === 'snapshot');
    other.send(telemetry(1, { ignored: 1 }));
    watched.send(telemetry(1, { temp: 21.5 }));
    const frame = await live.next((f) => f.type === 'events' && (f.readings ?? []).length > 0, 15_000);
    expect(frame.readings.map((r: { device: string; name: string; v: number }) => [r.device, r.name, r.v])).toEqual([['live-1', 'temp', 21.5]]);
    // A new dashboard on B gets the latest value in its snapshot, gathered from A.
    const late = await LiveClient.connect(b.baseUrl);
    await late.next((f) => f.type === 'snapshot');
    late.send({ type: 'subscribe', devices: ['live-1'] });
    const snapshot = await late.next((f) => f.type === 'snapshot');
    expect(snapshot.latest.map((r: { device: string; name: string; v: number }) => [r.device, r.name, r.v])).toEqual([['live-1', 'temp', 21.5]]);
    await live.close();
    await late.close();
  });

  it('a device moving from one node to the other is taken over with 4000, and its resend is a duplicate stored once', async () => {
    const first = await connect(a, 'move-1');
    // No time of its own: each node would stamp a copy it stored with its own receipt time,
    // so a second copy would be a second row (a timed one would collapse into the first in InfluxDB).
    const frame = encodeTelemetry(7, [{ n: 'v', v: 1 }]);
    first.send(frame);
    expect(await first.next()).toEqual({ type: 2, seq: 7 }); // ACK 0 (the code is left out when 0)
    const second = await connect(b, 'move-1');
    second.send(frame); // its first frame is its sign of life: the takeover happens, then the resend is handled
    expect(await first.closed).toEqual({ code: 4000, reason: expect.stringMatching(/replaced/) });
    expect(await second.next()).toMatchObject({ type: 2, seq: 7, code: 1 });
    await until(async () => ((await a.api('GET', '/v1/devices/move-1')).body.online === true ? true : undefined));
    await b.db.query('SHOW MEASUREMENTS'); // waits for node B's spool to drain too
    const rows = await a.db.query(`SELECT * FROM telemetry WHERE device = 'move-1'`);
    expect(rows).toHaveLength(1);
  });

  it('a device removed through one node is closed with 1008 by the node holding it, and refused everywhere', async () => {
    const put = await a.api('PUT', '/v1/devices/gone-1');
    const device = await TestDevice.connect(b.deviceUrl, { id: 'gone-1', secret: put.body.secret });
    devices.push(device);
    await until(async () => ((await a.api('GET', '/v1/devices/gone-1')).body.online === true ? true : undefined));
    expect((await a.api('DELETE', '/v1/devices/gone-1')).status).toBe(204);
    expect((await device.closed).code).toBe(1008);
    for (const hub of [a, b]) {
      await expect(TestDevice.connect(hub.deviceUrl, { id: 'gone-1', secret: put.body.secret })).rejects.toMatchObject({ status: 401 });
      expect((await hub.api('GET', '/v1/devices/gone-1')).status).toBe(404);
    }
  });

  it('says whether NATS is connected in /readyz and /metrics', async () => {
    const ready = await fetch(`${a.baseUrl}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { nats: true } });
    const metrics = await (await fetch(`${a.baseUrl}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).text();
    expect(metrics).toMatch(/^pulsewire_nats_connected 1$/m);
    expect(metrics).toMatch(/^pulsewire_cluster_nodes_alive 2$/m);
  });

  it('desired state patched on one node reaches the device on the other; a queue filled while offline goes out from whichever node it connects to', async () => {
    const { secret } = (await a.api('PUT', '/v1/devices/later-1')).body;
    const queued = await a.api('POST', '/v1/devices/later-1/commands', { name: 'calibrate' });
    expect(queued.status).toBe(202);
    const patched = await a.api('PATCH', '/v1/devices/later-1/desired', { interval: 30 });
    expect(patched.status).toBe(200);
    const device = await TestDevice.connect(b.deviceUrl, { id: 'later-1', secret });
    devices.push(device);
    // Protocol: DESIRED first, then the queue in order.
    expect(await device.next()).toMatchObject({ type: 6, version: 1 });
    expect(await device.next()).toMatchObject({ type: 3, commandId: queued.body.id, name: 'calibrate' });
    await a.api('PATCH', '/v1/devices/later-1/desired', { interval: 60 });
    expect(await device.next()).toMatchObject({ type: 6, version: 2 });
  });

  it('a job shows the same progress on every node', async () => {
    const ids = ['jp-1', 'jp-2', 'jp-3'];
    const answering = await Promise.all(ids.map(async (id, i) => {
      const device = await connect(i % 2 === 0 ? a : b, id);
      void (async () => {
        for (;;) {
          const message = await device.next(60_000).catch(() => undefined);
          if (!message) return;
          if (message.type === 3) device.send(encodeResult(message.commandId, 1));
        }
      })();
      return device;
    }));
    expect(answering).toHaveLength(3);
    const created = await b.api('POST', '/v1/jobs', { command: { name: 'sync' }, target: { prefix: 'jp-' }, rolloutPerSecond: 50 });
    expect(created.status).toBe(201);
    const done = await until(async () => {
      const job = (await a.api('GET', `/v1/jobs/${created.body.id}`)).body;
      return job.status === 'completed' ? job : undefined;
    }, 20_000);
    expect(done).toMatchObject({ total: 3, dispatched: 3, counts: { succeeded: 3 } });
    expect((await b.api('GET', `/v1/jobs/${created.body.id}`)).body).toMatchObject({ status: 'completed', dispatched: 3, counts: { succeeded: 3 } });
  });
});
