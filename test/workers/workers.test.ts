/**
 * A hub of several worker processes (PULSEWIRE_WORKERS), as an operator runs
 * it: one primary process (src/main.ts), its workers sharing one port, and
 * the nats-server it runs for them under its data dir. Devices are
 * device-sim's (reconnecting with backoff, counting every ACK), in this
 * process; readings are counted in InfluxDB.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, withDefaults } from '../../device-sim/index.js';
import { ENROLLMENT_KEY, OPERATOR_TOKEN } from '../support/hub.js';
import { startHubProcess, type HubProcess } from '../support/hub-process.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { waitFor } from '../support/wait.js';

const CEILING_MS = 60_000;

/** The hub's child processes: workers by node id, and its nats-server. */
function children(primaryPid: number): { workers: Map<string, number>; nats: number | undefined } {
  const workers = new Map<string, number>();
  let nats: number | undefined;
  const list = readFileSync(`/proc/${primaryPid}/task/${primaryPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  for (const pid of list) {
    let cmdline = '';
    try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmdline.includes('nats-server')) nats = pid;
    const environ = (() => { try { return readFileSync(`/proc/${pid}/environ`, 'utf8'); } catch { return ''; } })();
    const node = /(?:^|\0)PULSEWIRE_NODE_ID=([^\0]+)/.exec(environ)?.[1];
    if (node && !cmdline.includes('nats-server') && !cmdline.includes('influxd')) workers.set(node, pid);
  }
  return { workers, nats };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('a hub of three workers', { timeout: 240_000 }, () => {
  let dataDir: string;
  let database: FreshDatabase;
  let hub: HubProcess;
  const api = async (route: string): Promise<any> => (await fetch(`${hub.baseUrl}${route}`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).json();
  /** Readings of every kind (value, text, flag, data, sum are fields of their own). */
  const countReadings = async (prefix: string): Promise<number> => {
    const [row] = await database.query(`SELECT count(*) FROM telemetry WHERE device =~ /^${prefix}/`);
    return Object.entries(row ?? {}).filter(([column]) => column.startsWith('count_')).reduce((n, [, v]) => n + Number(v), 0);
  };
  const nodeOf = async (id: string): Promise<string | null> => (await api(`/v1/devices/${id}`)).node;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-workers-'));
    database = await freshDatabase('workers');
    hub = await startHubProcess({
      dataDir,
      env: { PULSEWIRE_WORKERS: '3', PULSEWIRE_INFLUX_URL: database.url, PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY, PULSEWIRE_NODE_LEASE_MS: '1500', PULSEWIRE_PING_INTERVAL_MS: '2000' },
      startTimeoutMs: 120_000,
    });
  }, 180_000);

  afterAll(async () => {
    await hub?.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  /** `count` devices (ids `<prefix>-N`) sending `rate` messages/s each until stopped. */
  const fleetOf = (prefix: string, count: number, rate = 1) => new Fleet(
    withDefaults({ url: `${hub.baseUrl.replace(/^http/, 'ws')}/v1/device`, enrollmentKey: ENROLLMENT_KEY, devices: count, rate, ramp: 500, prefix: `${prefix}-` }),
  ).start();

  it('spreads devices over the workers; every worker answers for the whole hub', async () => {
    const fleet = fleetOf('spread', 90);
    await waitFor(() => fleet.snapshot().connected === 90, { timeoutMs: CEILING_MS, what: '90 connected' });
    await waitFor(async () => (await api('/v1/devices?prefix=spread-&online=true&limit=1000')).devices.length === 90, { timeoutMs: CEILING_MS, what: '90 listed online' });
    const nodes = new Set((await api('/v1/devices?prefix=spread-&limit=1000')).devices.map((d: { node: string }) => d.node));
    expect(nodes.size).toBe(3);
    await fleet.stop();
    const summary = fleet.summary();
    expect(summary.telemetry.unacknowledged).toBe(0);
    await waitFor(async () => (await countReadings('spread-')) === summary.telemetry.records, { timeoutMs: CEILING_MS, what: 'every reading stored' });
    // /metrics adds up the workers, whichever one serves it.
    const metrics = await (await fetch(`${hub.baseUrl}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).text();
    expect(Number(/^pulsewire_readings_in_total (\d+)$/m.exec(metrics)?.[1])).toBe(summary.telemetry.records);
  });

  it('kill -9 of a worker: it is restarted, its devices come back, nothing acknowledged is lost, the others never go offline', async () => {
    const fleet = fleetOf('kill', 60, 2);
    await waitFor(() => fleet.snapshot().connected === 60, { timeoutMs: CEILING_MS, what: '60 connected' });
    const before = children(hub.child.pid!);
    const [victimNode, victimPid] = [...before.workers][0]!;
    const placed = await Promise.all(fleet.devices.map(async (d) => [d.id, await nodeOf(d.id)] as const));
    const elsewhere = placed.filter(([, node]) => node !== victimNode).map(([id]) => id);
    const killedAt = Date.now();
    process.kill(victimPid, 'SIGKILL');
    await waitFor(() => {
      const now = children(hub.child.pid!).workers.get(victimNode);
      return now !== undefined && now !== victimPid;
    }, { timeoutMs: CEILING_MS, what: 'the worker restarted' });
    await waitFor(async () => (await api('/v1/devices?prefix=kill-&online=true&limit=1000')).devices.length === 60, { timeoutMs: CEILING_MS, what: 'all 60 back online' });
    await fleet.stop();
    const summary = fleet.summary();
    expect(summary.telemetry.unacknowledged).toBe(0);
    // Every message ACKed (0, or 1 for a resend already stored), every reading in InfluxDB: readings, not messages
    // (each message carries a batch of them); a resend stored twice lands on the same point, so more would be a bug too.
    expect(summary.telemetry.stored).toBe(summary.telemetry.sent);
    await waitFor(async () => (await countReadings('kill-')) === summary.telemetry.records, { timeoutMs: CEILING_MS, what: 'every reading sent stored' });
    // The other workers' devices: no offline between the kill and the end of the run.
    const offline = await database.query(`SELECT * FROM device_status WHERE online = false AND time >= ${killedAt * 1_000_000} AND reason != 'closed by device'`);
    expect(offline.filter((row) => elsewhere.includes(String(row.device)))).toEqual([]);
  });

  it('kill -9 of its nats-server: restarted, no worker exits, nothing lost', async () => {
    const fleet = fleetOf('nats', 30, 2);
    await waitFor(() => fleet.snapshot().connected === 30, { timeoutMs: CEILING_MS, what: '30 connected' });
    const before = children(hub.child.pid!);
    expect(before.nats).toBeDefined();
    process.kill(before.nats!, 'SIGKILL');
    await waitFor(() => {
      const now = children(hub.child.pid!).nats;
      return now !== undefined && now !== before.nats;
    }, { timeoutMs: CEILING_MS, what: 'nats-server restarted' });
    await waitFor(async () => (await fetch(`${hub.baseUrl}/readyz`)).status === 200, { timeoutMs: CEILING_MS, what: 'ready again' });
    expect([...children(hub.child.pid!).workers.values()].sort()).toEqual([...before.workers.values()].sort());
    await fleet.stop();
    const summary = fleet.summary();
    expect(summary.telemetry.unacknowledged).toBe(0);
    // Every message ACKed (0, or 1 for a resend already stored), every reading in InfluxDB: readings, not messages
    // (each message carries a batch of them); a resend stored twice lands on the same point, so more would be a bug too.
    expect(summary.telemetry.stored).toBe(summary.telemetry.sent);
    await waitFor(async () => (await countReadings('nats-')) === summary.telemetry.records, { timeoutMs: CEILING_MS, what: 'every reading sent stored' });
  });

  it('SIGTERM: every device is closed with 1001, the hub exits 0, no process is left', async () => {
    const fleet = fleetOf('term', 30);
    await waitFor(() => fleet.snapshot().connected === 30, { timeoutMs: CEILING_MS, what: '30 connected' });
    const { workers, nats } = children(hub.child.pid!);
    const pids = [...workers.values(), nats!];
    expect(await hub.kill('SIGTERM')).toBe(0);
    await waitFor(() => (fleet.stats.disconnects['1001'] ?? 0) >= 30, { timeoutMs: CEILING_MS, what: '30 closed with 1001' });
    await waitFor(() => pids.every((pid) => !alive(pid)), { timeoutMs: CEILING_MS, what: 'no worker or nats-server left' });
    await fleet.stop();
  });
});
