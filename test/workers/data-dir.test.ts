/**
 * One data dir across runs with different numbers of workers: nothing a run
 * acknowledged is left behind in a spool the next run does not open, and the
 * devices a one-process hub knew are known to the workers that follow it.
 * InfluxDB is reached through a gate the test shuts, so acknowledged readings
 * are still in the spools when a run stops.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { TestDevice } from '../support/device-client.js';
import { ENROLLMENT_KEY, OPERATOR_TOKEN } from '../support/hub.js';
import { startHubProcess, type HubProcess } from '../support/hub-process.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { InfluxGate } from '../support/influx-gate.js';
import { waitFor } from '../support/wait.js';

const CEILING_MS = 60_000;

describe('a data dir across runs with different numbers of workers', { timeout: 240_000 }, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => { for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined); });

  async function setUp() {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-slots-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const database = await freshDatabase('slots');
    const gate = await InfluxGate.start(inject('influxUrl'));
    cleanup.push(() => gate.stop());
    const start = async (workers: number): Promise<HubProcess> => {
      const hub = await startHubProcess({
        dataDir, startTimeoutMs: 120_000,
        env: { PULSEWIRE_WORKERS: String(workers), PULSEWIRE_INFLUX_URL: `${gate.url}/${database.database}`, PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY, PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '8000' },
      });
      cleanup.push(() => hub.kill('SIGKILL'));
      return hub;
    };
    return { database, gate, start };
  }

  /** `devices` devices on `hub`, each sending `count` readings, every one acknowledged (in the spool). */
  async function acknowledged(hub: HubProcess, prefix: string, devices: number, count: number, secrets: Map<string, string> = new Map()): Promise<void> {
    for (let d = 0; d < devices; d++) {
      const id = `${prefix}${d}`;
      const device = await TestDevice.connect(hub.deviceUrl, { id, ...(secrets.has(id) ? { secret: secrets.get(id)! } : {}) });
      for (let seq = 0; seq < count; seq++) device.send(encodeTelemetry(seq, [{ n: 'n', v: seq }]));
      for (let seq = 0; seq < count; seq++) expect(await device.next(CEILING_MS)).toEqual({ type: 2, seq });
      await device.close();
    }
  }

  const stored = async (database: FreshDatabase, prefix: string): Promise<number> =>
    (await database.query<{ time: number; count: number }>(`SELECT count(value) FROM telemetry WHERE device =~ /^${prefix}/`))[0]?.count ?? 0;

  it('fewer workers than last time: the spools of the slots that are gone are drained into InfluxDB', async () => {
    const { database, gate, start } = await setUp();
    gate.shut();
    const three = await start(3);
    await acknowledged(three, 'slot-', 9, 4);
    expect(await three.kill('SIGTERM')).toBe(0);
    gate.open();
    // One process now: it opens none of the worker slots, and drains them all.
    const one = await start(1);
    await waitFor(async () => (await stored(database, 'slot-')) === 36, { timeoutMs: CEILING_MS, what: '36 readings in InfluxDB' });
    expect(await one.kill('SIGTERM')).toBe(0);
  });

  it('from one process to workers: its devices, secrets and spooled readings carry over', async () => {
    const { database, gate, start } = await setUp();
    gate.shut();
    const one = await start(1);
    const put = await fetch(`${one.baseUrl}/v1/devices/kept-0`, { method: 'PUT', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    const { secret } = await put.json() as { secret: string };
    await acknowledged(one, 'kept-', 1, 5, new Map([['kept-0', secret]]));
    expect(await one.kill('SIGTERM')).toBe(0);
    gate.open();
    const two = await start(2);
    // The registered device's secret still works on the workers (its record was copied into JetStream).
    const device = await TestDevice.connect(two.deviceUrl, { id: 'kept-0', secret });
    await device.close();
    const view = await (await fetch(`${two.baseUrl}/v1/devices/kept-0`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).json() as { provisioning: string };
    expect(view.provisioning).toBe('registered');
    await waitFor(async () => (await stored(database, 'kept-')) === 5, { timeoutMs: CEILING_MS, what: '5 readings in InfluxDB' });
    expect(await two.kill('SIGTERM')).toBe(0);
  });
});
