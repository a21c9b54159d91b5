/**
 * The Grafana dashboards (dashboards/grafana) against what the hub really
 * writes and exports: every InfluxQL query names only measurements, fields
 * and tags of src/storage/schema.ts and runs without error on the suite's
 * influxd over points built by schema.ts itself; every Prometheus query names
 * only metrics a real hub's /metrics serves; every datasource a panel uses is
 * provisioned.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_FIELD, commandPoint, FIELD_BY_KIND, MEASUREMENT, readingPoints, statusPoint, STATUS_FIELD, TAG, WRITE_PRECISION } from '../../src/storage/schema.js';
import { startHub, type TestHub } from '../support/hub.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';

const GRAFANA = path.resolve(import.meta.dirname, '../../dashboards/grafana');
const DASHBOARDS = readdirSync(path.join(GRAFANA, 'dashboards')).filter((f) => f.endsWith('.json'));

type Target = { refId?: string; datasource?: { type: string; uid: string }; query?: string; expr?: string };
type Panel = { id: number; title: string; type: string; datasource?: { type: string; uid: string }; targets?: Target[]; gridPos?: object };
type Dashboard = { uid: string; title: string; panels: Panel[]; templating: { list: { name: string; datasource?: { uid: string }; query?: string }[] } };

const dashboards = DASHBOARDS.map((file) => ({ file, json: JSON.parse(readFileSync(path.join(GRAFANA, 'dashboards', file), 'utf8')) as Dashboard }));

/** Fields and tags of each measurement, from the schema module the writer uses. */
const SCHEMA: Record<string, { fields: Set<string>; tags: Set<string> }> = {
  [MEASUREMENT.TELEMETRY]: { fields: new Set(Object.values(FIELD_BY_KIND)), tags: new Set([TAG.DEVICE, TAG.NAME, TAG.UNIT]) },
  [MEASUREMENT.DEVICE_STATUS]: { fields: new Set(Object.values(STATUS_FIELD)), tags: new Set([TAG.DEVICE]) },
  [MEASUREMENT.COMMAND]: { fields: new Set(Object.values(COMMAND_FIELD)), tags: new Set([TAG.DEVICE, TAG.NAME, TAG.STATUS]) },
};

function influxQueries(): { where: string; query: string }[] {
  const found: { where: string; query: string }[] = [];
  for (const { file, json } of dashboards) {
    for (const panel of json.panels) {
      for (const target of panel.targets ?? []) {
        if ((target.datasource ?? panel.datasource)?.type === 'influxdb') found.push({ where: `${file} "${panel.title}" ${target.refId}`, query: target.query ?? '' });
      }
    }
    for (const variable of json.templating.list) {
      if (variable.datasource?.uid === 'pulsewire-influxdb') found.push({ where: `${file} variable ${variable.name}`, query: variable.query ?? '' });
    }
  }
  return found;
}

function promQueries(): { where: string; expr: string }[] {
  return dashboards.flatMap(({ file, json }) => json.panels.flatMap((panel) => (panel.targets ?? [])
    .filter((t) => (t.datasource ?? panel.datasource)?.type === 'prometheus')
    .map((t) => ({ where: `${file} "${panel.title}" ${t.refId}`, expr: t.expr ?? '' }))));
}

/**
 * The points below are written at fixed times around T0 (a Monday 16:00 UTC, far from InfluxDB's
 * Monday 00:00 shard cut) and $timeFilter is the absolute hour before T0, not `now() - 1h`: what a
 * query finds does not depend on the day or the hour the suite runs.
 */
const T0_US = 1_764_000_000 * 1_000_000;
const HOUR_US = 3600 * 1_000_000;

/** Grafana's macros and variables as it would expand them over the hour before T0, for running a query by hand. */
function expand(query: string): string {
  return query
    .replaceAll('$timeFilter', `time > ${T0_US - HOUR_US}u AND time <= ${T0_US}u`)
    .replaceAll('$__interval', '1m')
    .replaceAll('/^$device$/', '/^dash-1$/')
    .replaceAll('/^$series$/', '/.*/');
}

describe('Grafana dashboards', () => {
  it('are dashboards with unique uids, laid out panels and provisioned datasources', () => {
    expect(DASHBOARDS.sort()).toEqual(['device-detail.json', 'fleet-overview.json', 'hub-health.json']);
    const provisioned = readFileSync(path.join(GRAFANA, 'provisioning/datasources/pulsewire.yaml'), 'utf8');
    const uids = new Set([...provisioned.matchAll(/^\s+uid:\s*(\S+)\s*$/gm)].map((m) => m[1]));
    expect(uids).toEqual(new Set(['pulsewire-influxdb', 'pulsewire-prometheus']));
    expect(new Set(dashboards.map((d) => d.json.uid)).size).toBe(dashboards.length);
    for (const { file, json } of dashboards) {
      expect(json.panels.length, file).toBeGreaterThan(2);
      expect(new Set(json.panels.map((p) => p.id)).size, `${file} panel ids`).toBe(json.panels.length);
      for (const panel of json.panels) {
        expect(panel.gridPos, `${file} ${panel.title}`).toEqual({ x: expect.any(Number), y: expect.any(Number), w: expect.any(Number), h: expect.any(Number) });
        expect(panel.targets?.length, `${file} ${panel.title}`).toBeGreaterThan(0);
        for (const target of panel.targets ?? []) expect(uids.has((target.datasource ?? panel.datasource)!.uid), `${file} ${panel.title}`).toBe(true);
      }
    }
    const provider = readFileSync(path.join(GRAFANA, 'provisioning/dashboards/pulsewire.yaml'), 'utf8');
    expect(provider).toContain('path: /var/lib/grafana/dashboards');
    const compose = readFileSync(path.resolve(GRAFANA, '../../docker-compose.yml'), 'utf8');
    expect(compose).toContain('./dashboards/grafana/dashboards:/var/lib/grafana/dashboards');
    expect(compose).toContain('./dashboards/grafana/provisioning:/etc/grafana/provisioning');
    // Every published port is on loopback.
    for (const [, port] of compose.matchAll(/^\s+- "([^"]*:\d+)"\s*$/gm)) expect(port).toMatch(/^127\.0\.0\.1:/);
  });

  it('InfluxQL names only measurements, fields and tags of src/storage/schema.ts', () => {
    const queries = influxQueries();
    expect(queries.length).toBeGreaterThan(10);
    for (const { where, query } of queries) {
      const measurements = [...query.matchAll(/FROM "([^"]+)"/g)].map((m) => m[1]!);
      expect(measurements.length, where).toBeGreaterThan(0);
      for (const measurement of measurements) expect(Object.keys(SCHEMA), where).toContain(measurement);
      const known = new Set(measurements.flatMap((m) => [...SCHEMA[m]!.fields, ...SCHEMA[m]!.tags]));
      // Every other quoted identifier is a field or tag, except the measurement and AS aliases.
      const aliases = new Set([...query.matchAll(/AS "([^"]+)"/g)].map((m) => m[1]!));
      const identifiers = [...query.matchAll(/"([^"]+)"/g)].map((m) => m[1]!).filter((id) => !measurements.includes(id) && !aliases.has(id));
      for (const id of identifiers) expect(known.has(id), `${where}: "${id}" in ${query}`).toBe(true);
      // GROUP BY and WITH KEY take tags only.
      for (const [, list] of query.matchAll(/GROUP BY ([^f]*?)(?: fill\(|$| ORDER| LIMIT)/g)) {
        for (const [, tag] of list!.matchAll(/"([^"]+)"/g)) expect(measurements.some((m) => SCHEMA[m]!.tags.has(tag!)), `${where}: GROUP BY "${tag}"`).toBe(true);
      }
      for (const [, key] of query.matchAll(/WITH KEY = "([^"]+)"/g)) expect(measurements.some((m) => SCHEMA[m]!.tags.has(key!)), where).toBe(true);
    }
  });

  describe('against real InfluxDB and a real hub', () => {
    let db: FreshDatabase;
    let hub: TestHub;

    beforeAll(async () => {
      db = await freshDatabase('grafana');
      const readings = [
        { name: 'temp', unit: 'Cel', kind: 'value' as const, value: 21.5, timeUs: T0_US - 60e6 },
        { name: 'temp', unit: 'Cel', kind: 'value' as const, value: 22, timeUs: T0_US - 30e6 },
        { name: 'energy', unit: 'Wh', kind: 'sum' as const, value: 1200, timeUs: T0_US - 30e6 },
        { name: 'mode', kind: 'text' as const, value: 'eco', timeUs: T0_US - 30e6 },
        { name: 'door', kind: 'flag' as const, value: true, timeUs: T0_US - 30e6 },
      ];
      await db.connection.influx.writePoints([
        ...readingPoints('dash-1', readings),
        statusPoint('dash-1', true, 'connected', T0_US - 90e6),
        statusPoint('dash-1', false, 'ping-timeout', T0_US - 10e6),
        commandPoint('dash-1', 'reboot', 'succeeded', 42, T0_US - 20e6),
        commandPoint('dash-1', 'reboot', 'timed-out', 30_000, T0_US - 15e6),
      ], { database: db.database, precision: WRITE_PRECISION });
      hub = await startHub();
    });
    afterAll(async () => {
      await hub?.close();
      await db?.drop();
    });

    it('every InfluxQL query runs, and the device queries find the device', async () => {
      for (const { where, query } of influxQueries()) {
        const rows = await db.query(expand(query)).catch((err: Error) => { throw new Error(`${where}: ${err.message}\n${expand(query)}`); });
        if (/"device" =~ \/\^\$device\$\/|WITH KEY = "device"/.test(query)) expect(rows.length, `${where}: ${expand(query)}`).toBeGreaterThan(0);
      }
      const offline = await db.query(expand('SELECT "device", "reason" FROM "device_status" WHERE "online" = false AND $timeFilter'));
      expect(offline).toMatchObject([{ device: 'dash-1', reason: 'ping-timeout' }]);
      // The command panels see the outcomes by status, and the succeeded one's latency.
      const outcomes = await db.query(expand('SELECT count("latency_ms") FROM "command" WHERE $timeFilter GROUP BY "status"'));
      expect(outcomes.map((row) => [row.status, row.count]).sort()).toEqual([['succeeded', 1], ['timed-out', 1]]);
    });

    it('every Prometheus query names metrics the hub serves', async () => {
      const res = await hub.api('GET', '/metrics');
      expect(res.status).toBe(200);
      const served = new Set([...String(res.body).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
      const queries = promQueries();
      expect(queries.length).toBeGreaterThan(10);
      for (const { where, expr } of queries) {
        const names = [...expr.matchAll(/\bpulsewire_[a-z0-9_]+/g)].map((m) => m[0]);
        expect(names.length, where).toBeGreaterThan(0);
        for (const name of names) expect(served.has(name), `${where}: ${name}`).toBe(true);
      }
      // Hub health shows every live-stream metric the hub serves, so a new one cannot be left off.
      const health = queries.filter((q) => q.where.startsWith('hub-health.json')).map((q) => q.expr).join('\n');
      const live = [...served].filter((name) => name.startsWith('pulsewire_live_'));
      expect(live.length).toBeGreaterThanOrEqual(3);
      for (const name of live) expect(health, `hub-health.json shows ${name}`).toMatch(new RegExp(`\\b${name}\\b`));
    });
  });
});
