/**
 * A firing alert across a hub restart (same data dir, same InfluxDB): the
 * next run lists it firing at once, does not announce it again while the
 * device stays above the threshold, and resolves it once when it drops.
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
});
