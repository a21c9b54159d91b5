/**
 * A firing alert across a hub restart (same data dir, same InfluxDB): the
 * next run lists it firing at once, does not announce it again while the
 * device stays above the threshold, and resolves it once when it drops. A
 * device that stops sending while the hub is down goes stale after it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { AlertView } from '../../src/alerts/types.js';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { TestDevice } from '../support/device-client.js';
import { restartableHub } from '../support/hub.js';
import { until, waitFor } from '../support/wait.js';

describe('alerts across a hub restart', () => {
  let hubs: Awaited<ReturnType<typeof restartableHub>>;
  afterAll(async () => { await hubs?.close(); });

  async function send(device: TestDevice, seq: number, value: number): Promise<void> {
    device.send(encodeTelemetry(seq, [{ n: 'pressure', v: value }]));
    expect(await device.next()).toMatchObject({ type: 2, seq });
  }

  it('keeps firing alerts, announces nothing twice and resolves once after the restart', async () => {
    hubs = await restartableHub('alerts-restart');
    const first = await hubs.start();
    const rule = (await first.api('POST', '/v1/rules', { name: 'overpressure', devices: { ids: ['pump-1'] }, series: 'pressure', condition: { kind: 'above', threshold: 6 } })).body;
    const d1 = await TestDevice.connect(first.deviceUrl, { id: 'pump-1' });
    await send(d1, 1, 7.5);
    const firing = await until(async () => (await first.api('GET', '/v1/alerts')).body.alerts[0] as AlertView | undefined);
    await d1.close();
    await first.close();

    const second = await hubs.start();
    const events: string[] = [];
    second.app.bus.on('alert.firing', () => events.push('firing'));
    second.app.bus.on('alert.resolved', ({ alert }) => events.push(`resolved ${alert.id} ${alert.value}`));
    expect((await second.api('GET', '/v1/rules')).body.rules).toMatchObject([{ id: rule.id, name: 'overpressure' }]);
    expect((await second.api('GET', '/v1/alerts')).body.alerts).toEqual([firing]);
    const d2 = await TestDevice.connect(second.deviceUrl, { id: 'pump-1' });
    await send(d2, 2, 8);
    await send(d2, 3, 5);
    await waitFor(() => events.length > 0, { what: 'resolved after restart' });
    expect(events).toEqual([`resolved ${firing.id} 5`]);
    expect((await second.api('GET', '/v1/alerts')).body.alerts).toEqual([]);
    await d2.close();

    const rows = await until(async () => {
      const found = await second.db.query(`SELECT "state", "value" FROM "alert" WHERE "device" = 'pump-1' ORDER BY time ASC`);
      return found.length >= 2 ? found : undefined;
    });
    expect(rows.map((r) => [r.state, r.value])).toEqual([['firing', 7.5], ['resolved', 5]]);
  });

  it('a device that goes quiet across the restart is stale for a prefix staleness rule, from the series InfluxDB knows', async () => {
    const quietHubs = await restartableHub('alerts-restart-quiet');
    try {
      const first = await quietHubs.start();
      const rule = (await first.api('POST', '/v1/rules', { name: 'pump silent', devices: { prefix: 'pump-' }, series: 'flow', condition: { kind: 'stale', afterSeconds: 2 } })).body;
      const device = await TestDevice.connect(first.deviceUrl, { id: 'pump-7' });
      device.send(encodeTelemetry(1, [{ n: 'flow', v: 3.2 }]));
      expect(await device.next()).toMatchObject({ type: 2, seq: 1 });
      await device.close();
      // Stored before the hub stops, so the next run's seeding of the live stream finds it.
      await until(async () => ((await first.db.query(`SELECT "value" FROM "telemetry" WHERE "device" = 'pump-7'`)).length === 1 ? true : undefined));
      await first.close();

      // The device never comes back: nothing but the stored series tells the new run to watch it.
      const second = await quietHubs.start({}, { alerts: { sweepMs: 100 } });
      const stale = await until(async () => (await second.api('GET', '/v1/alerts')).body.alerts[0] as AlertView | undefined);
      expect(stale).toMatchObject({ id: `${rule.id}/pump-7/flow`, deviceId: 'pump-7', state: 'firing' });
      expect(stale.value).toBeUndefined();
    } finally {
      await quietHubs.close();
    }
  });
});
