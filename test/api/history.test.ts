import { Encoder } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultEvery } from '../../src/api/history.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false, variableMapSize: true });

// An hour ago, on a minute boundary: 60 readings of `temp`, one every 10 s, valued 0..59.
const T0_MS = Math.floor(Date.now() / 60_000) * 60_000 - 3600_000;
const RANGE = `from=${new Date(T0_MS).toISOString()}&to=${T0_MS + 600_000}`;

describe('GET /v1/devices/:id/telemetry', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'hist-1' });
    const records = Array.from({ length: 60 }, (_, k) => new Map<number, unknown>([[0, 'temp'], [2, k], [6, T0_MS / 1000 + k * 10]]));
    // A counter (SenML `s`, stored in the `sum` field) beside it: 0, 2, 4, ... at the same times.
    records.push(...Array.from({ length: 60 }, (_, k) => new Map<number, unknown>([[0, 'energy'], [5, 2 * k], [1, 'Wh'], [6, T0_MS / 1000 + k * 10]])));
    device.send(cbor.encode([1, 1, records]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    await device.close();
    await hub.db.query('SHOW MEASUREMENTS'); // waits for the spool to drain into InfluxDB
  });
  afterAll(async () => { await hub?.close(); });

  const history = (query: string, id = 'hist-1') => hub.api('GET', `/v1/devices/${id}/telemetry?${query}`);

  it('aggregates into buckets: mean by default, min, max, last, count', async () => {
    const mean = await history(`name=temp&${RANGE}&every=1m`);
    expect(mean.status).toBe(200);
    expect(mean.body).toMatchObject({ deviceId: 'hist-1', name: 'temp', agg: 'mean', every: '60000ms', from: new Date(T0_MS).toISOString() });
    expect(mean.body.points).toHaveLength(10);
    expect(mean.body.points[0]).toEqual({ time: new Date(T0_MS).toISOString(), value: 2.5 });
    expect(mean.body.points[9].value).toBe(56.5);
    const pick = async (agg: string) => (await history(`name=temp&${RANGE}&every=1m&agg=${agg}`)).body.points[1].value;
    expect(await pick('min')).toBe(6);
    expect(await pick('max')).toBe(11);
    expect(await pick('last')).toBe(11);
    expect(await pick('count')).toBe(6);
  });

  it('reads the sum field of a counter series with field=sum, and only the value field without it', async () => {
    const sums = await history(`name=energy&${RANGE}&every=1m&field=sum&agg=max`);
    expect(sums.status).toBe(200);
    expect(sums.body).toMatchObject({ field: 'sum', agg: 'max' });
    expect(sums.body.points).toHaveLength(10);
    expect(sums.body.points[0]).toEqual({ time: new Date(T0_MS).toISOString(), value: 10 });
    expect(sums.body.points[9].value).toBe(118);
    // The default field is value, which a counter does not have.
    const values = await history(`name=energy&${RANGE}&every=1m`);
    expect(values.body).toMatchObject({ field: 'value', points: [] });
    const bad = await history(`name=energy&${RANGE}&field=text`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/field/);
  });

  it('lists the series a device stored with kind, unit and newest reading (GET /v1/devices/:id/series)', async () => {
    const res = await hub.api('GET', '/v1/devices/hist-1/series');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      deviceId: 'hist-1',
      series: [
        { name: 'energy', kind: 'sum', unit: 'Wh', time: new Date(T0_MS + 590_000).toISOString(), value: 118 },
        { name: 'temp', kind: 'value', time: new Date(T0_MS + 590_000).toISOString(), value: 59 },
      ],
    });
    // since narrows to series with a reading at or after it; both are older than a minute ago.
    expect((await hub.api('GET', `/v1/devices/hist-1/series?since=${Date.now() - 60_000}`)).body.series).toEqual([]);
    expect((await hub.api('GET', '/v1/devices/hist-1/series?since=soon')).status).toBe(400);
    expect((await hub.api('GET', '/v1/devices/never-seen/series')).status).toBe(404);
    expect((await hub.api('GET', '/v1/devices/hist-1/series', undefined, 'wrong-token-wrong-token')).status).toBe(401);
  });

  it('chooses a resolution from the range when every is not given', async () => {
    const fine = await history(`name=temp&${RANGE}`);
    expect(fine.body.every).toBe('1000ms');
    expect(fine.body.points).toHaveLength(60);
    expect(defaultEvery(24 * 3600_000)).toBe(300_000);
    expect(defaultEvery(365 * 86_400_000)).toBe(12 * 3600_000);
    expect(defaultEvery(100 * 365 * 86_400_000)).toBe(37 * 86_400_000); // beyond a week: whole days
    // The default range is the 24 h before the hub's now, which holds all 60 readings (an hour old);
    // 5-minute buckets are aligned to the epoch, so which of them hold readings follows from T0.
    const recent = await history('name=temp');
    expect(recent.body.every).toBe('300000ms');
    const buckets = [...new Set(Array.from({ length: 60 }, (_, k) => Math.floor((T0_MS + k * 10_000) / 300_000) * 300_000))];
    expect(recent.body.points.map((p: { time: string }) => Date.parse(p.time))).toEqual(buckets);
  });

  it('answers 400 naming the parameter for bad ranges and resolutions, 404 for unknown devices', async () => {
    const cases: [string, RegExp][] = [
      [`name=temp&from=${T0_MS + 1000}&to=${T0_MS}`, /from: must be before to/],
      [`name=temp&from=${T0_MS}&to=${T0_MS}`, /from: must be before to/],
      ['name=temp&from=yesterday', /from: .* neither ISO 8601 nor epoch/],
      ['name=temp&to=2024-13-45T99:00:00Z', /to: /],
      ['name=temp&every=fortnight', /every: a positive duration/],
      ['name=temp&every=0s', /every: a positive duration/],
      [`name=temp&from=${T0_MS - 86_400_000}&to=${T0_MS}&every=1s`, /every: 1s over this range makes 86400 points, more than 10000/],
      ['name=temp&agg=median', /agg/],
      [RANGE, /name/],
    ];
    for (const [query, message] of cases) {
      const res = await history(query);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe('PW_ERR_BAD_REQUEST');
      expect(res.body.error.message).toMatch(message);
    }
    const missing = await history('name=temp', 'never-seen');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('PW_ERR_DEVICE_NOT_FOUND');
  });

  it('treats an injection attempt in name as a name that matches nothing', async () => {
    for (const name of [`temp' OR '1'='1`, `temp" OR "1"="1`, `temp'; DROP DATABASE "${hub.db.database}"; --`, '/temp/ OR 1=1']) {
      const res = await history(`name=${encodeURIComponent(name)}&${RANGE}&every=1m`);
      expect(res.status, name).toBe(200);
      expect(res.body.points).toEqual([]);
    }
    expect((await history(`name=temp&${RANGE}&every=1m`)).body.points).toHaveLength(10);
  });

  it('is in the OpenAPI document and needs the operator token', async () => {
    const openapi = (await (await fetch(`${hub.baseUrl}/openapi.json`)).json()) as { paths: Record<string, { get?: { parameters?: { name: string }[] } }> };
    const route = openapi.paths['/v1/devices/{id}/telemetry'];
    expect(route?.get?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['id', 'name', 'from', 'to', 'every', 'agg', 'field']));
    expect(openapi.paths['/v1/devices/{id}/series']?.get?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['id', 'since']));
    expect(openapi.paths['/v1/dead-letters']?.get?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['limit', 'cursor']));
    expect((await hub.api('GET', '/v1/devices/hist-1/telemetry?name=temp', undefined, 'wrong-token-wrong-token')).status).toBe(401);
  });
});

describe('history across a shard boundary, hub clock pinned', () => {
  // InfluxDB 1.x starts a 7-day shard group at Monday 00:00 UTC. Readings from Sunday 23:55 to
  // Monday 00:04:50, one every 10 s valued 0..59, with the hub's clock just after them: on any
  // day the run is, the series lies across two shards, and every bound below is absolute.
  const MONDAY_MS = Date.parse('2025-11-24T00:00:00Z');
  const START_MS = MONDAY_MS - 300_000;
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({}, { nowUs: () => (MONDAY_MS + 600_000) * 1000 });
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'hist-shards' });
    const records = Array.from({ length: 60 }, (_, k) => new Map<number, unknown>([[0, 'temp'], [2, k], [6, START_MS / 1000 + k * 10]]));
    device.send(cbor.encode([1, 1, records]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    await device.close();
    await hub.db.query('SHOW MEASUREMENTS'); // waits for the spool to drain into InfluxDB
  });
  afterAll(async () => { await hub?.close(); });

  it('aggregates the buckets on both sides of Monday 00:00 UTC, and lists the newest reading', async () => {
    const range = `from=${new Date(START_MS).toISOString()}&to=${new Date(MONDAY_MS + 300_000).toISOString()}`;
    const res = await hub.api('GET', `/v1/devices/hist-shards/telemetry?name=temp&${range}&every=1m&agg=count`);
    expect(res.status).toBe(200);
    expect(res.body.points).toEqual(Array.from({ length: 10 }, (_, m) => ({ time: new Date(START_MS + m * 60_000).toISOString(), value: 6 })));
    const mean = await hub.api('GET', `/v1/devices/hist-shards/telemetry?name=temp&${range}&every=5m`);
    expect(mean.body.points).toEqual([
      { time: new Date(START_MS).toISOString(), value: 14.5 }, // Sunday: 0..29
      { time: new Date(MONDAY_MS).toISOString(), value: 44.5 }, // Monday: 30..59
    ]);
    const series = await hub.api('GET', `/v1/devices/hist-shards/series?since=${START_MS}`);
    expect(series.body.series).toEqual([{ name: 'temp', kind: 'value', time: new Date(START_MS + 590_000).toISOString(), value: 59 }]);
  });
});
