/**
 * The topology of docs/deploy.md, as processes: three hub nodes behind the
 * shipped nginx configuration (least_conn, WebSocket upgrades), one
 * nats-server with JetStream, one InfluxDB database. Devices and operators
 * reach the cluster through nginx, except where a test needs a device on a
 * named node (then it connects to that node directly, as a device that
 * nginx happened to send there).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeResult, encodeTelemetry } from '../../src/protocol/encode.js';
import { LiveClient, telemetry } from '../live/live-client.js';
import { startCluster, type ClusterNodeProcess, type TestCluster } from '../support/cluster.js';
import { TestDevice } from '../support/device-client.js';
import { OPERATOR_TOKEN } from '../support/hub.js';
import { startNginx, type TestNginx } from '../support/nginx.js';
import { waitFor } from '../support/wait.js';

const CEILING_MS = 30_000;

async function spoolEntries(node: ClusterNodeProcess): Promise<number> {
  const text = await (await fetch(`${node.hub.baseUrl}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).text();
  return Number(/^pulsewire_spool_entries (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

describe('three nodes behind nginx', { timeout: 180_000 }, () => {
  let cluster: TestCluster;
  let nginx: TestNginx;
  let a: ClusterNodeProcess;
  let b: ClusterNodeProcess;
  let c: ClusterNodeProcess;
  const devices: TestDevice[] = [];
  const upstreams = () => cluster.nodes.map((node) => new URL(node.hub.baseUrl).host);

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3 });
    [a, b, c] = cluster.nodes as [ClusterNodeProcess, ClusterNodeProcess, ClusterNodeProcess];
    nginx = await startNginx({ upstreams: upstreams() });
  }, 180_000);

  afterAll(async () => {
    for (const device of devices) await device.close().catch(() => undefined);
    await nginx?.stop();
    await cluster?.close();
  });

  const connect = async (url: string, id: string, secret?: string) => {
    const device = await TestDevice.connect(url, { id, ...(secret ? { secret } : {}) });
    devices.push(device);
    return device;
  };
  const view = async (node: ClusterNodeProcess, id: string) => (await node.api('GET', `/v1/devices/${id}`)).body;

  it('spreads devices over the nodes, and every node lists all of them online, each on its node', async () => {
    const ids = Array.from({ length: 9 }, (_, i) => `spread-${i}`);
    for (const id of ids) await connect(nginx.wsUrl('/v1/device'), id);
    for (const node of cluster.nodes) {
      await waitFor(async () => {
        const listed = (await node.api('GET', '/v1/devices?prefix=spread-&online=true')).body.devices as { id: string }[];
        return listed.length === ids.length;
      }, { timeoutMs: CEILING_MS, what: `all online on ${node.id}` });
    }
    const holders = await Promise.all(ids.map(async (id) => (await view(a, id)).node as string));
    // least_conn: three nodes, nine connections, three each.
    expect(holders.sort()).toEqual(['node-a', 'node-a', 'node-a', 'node-b', 'node-b', 'node-b', 'node-c', 'node-c', 'node-c']);
  });

  it('a device registered through node A authenticates on node C', async () => {
    const put = await a.api('PUT', '/v1/devices/reg-c');
    expect(put.status).toBe(201);
    await connect(c.hub.deviceUrl, 'reg-c', put.body.secret);
    await waitFor(async () => (await view(b, 'reg-c')).node === 'node-c', { timeoutMs: CEILING_MS, what: 'reg-c on node C, seen from B' });
  });

  it('a command posted to node A reaches a device on node C; its result shows on node B, and ?wait on B returns it', async () => {
    const device = await connect(c.hub.deviceUrl, 'cmd-c');
    await waitFor(async () => (await view(a, 'cmd-c')).online === true, { timeoutMs: CEILING_MS, what: 'cmd-c online on A' });
    const created = await a.api('POST', '/v1/devices/cmd-c/commands', { name: 'valve', args: { open: true } });
    expect(created.status).toBe(202);
    const waiting = b.api('GET', `/v1/devices/cmd-c/commands/${created.body.id}?wait=20`);
    const command = await device.next(CEILING_MS);
    expect(command).toMatchObject({ type: 3, commandId: created.body.id, name: 'valve' });
    device.send(encodeResult(created.body.id, 1, 'opened'));
    const waited = await waiting;
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ status: 'succeeded', result: 'opened' });
    expect((await b.api('GET', `/v1/devices/cmd-c/commands/${created.body.id}`)).body.status).toBe('succeeded');
  });

  it('a dashboard on node B sees the readings of a device on node A, with its filter honoured', async () => {
    const watched = await connect(a.hub.deviceUrl, 'dash-a');
    const other = await connect(a.hub.deviceUrl, 'dash-x');
    const live = await LiveClient.connect(b.hub.baseUrl, { authorization: `Bearer ${OPERATOR_TOKEN}` });
    await live.next((f) => f.type === 'snapshot');
    live.send({ type: 'subscribe', devices: ['dash-a'] });
    await live.next((f) => f.type === 'snapshot');
    other.send(telemetry(1, { noise: 1 }));
    watched.send(telemetry(1, { temp: 19.25 }));
    const frame = await live.next((f) => f.type === 'events' && (f.readings ?? []).length > 0, CEILING_MS);
    expect(frame.readings.map((r: { device: string; name: string; v: number }) => [r.device, r.name, r.v])).toEqual([['dash-a', 'temp', 19.25]]);
    await live.close();
  });

  it('a device moving from node A to node B is taken over with 4000 on A; its resend is a duplicate, stored once', async () => {
    const first = await connect(a.hub.deviceUrl, 'mover');
    // No time of its own: a second stored copy would be a second row.
    const frame = encodeTelemetry(3, [{ n: 'x', v: 42 }]);
    first.send(frame);
    expect(await first.next(CEILING_MS)).toEqual({ type: 2, seq: 3 });
    const second = await connect(b.hub.deviceUrl, 'mover');
    second.send(frame);
    expect((await first.closed).code).toBe(4000);
    expect(await second.next(CEILING_MS)).toEqual({ type: 2, seq: 3, code: 1 });
    await waitFor(async () => (await view(c, 'mover')).node === 'node-b', { timeoutMs: CEILING_MS, what: 'mover on node B' });
    await waitFor(async () => (await cluster.database.query(`SELECT value FROM telemetry WHERE device = 'mover'`)).length === 1,
      { timeoutMs: CEILING_MS, what: 'one row' });
    // And stays one: with both nodes' spools empty, nothing more is on its way.
    for (const node of [a, b]) await waitFor(async () => spoolEntries(node).then((n) => n === 0), { timeoutMs: CEILING_MS, what: `${node.id}'s spool empty` });
    expect(await cluster.database.query(`SELECT value FROM telemetry WHERE device = 'mover'`)).toHaveLength(1);
  });

  it('kill -9 of node C: its devices are node-lost, come back through nginx to the others, and C rejoins after its restart', async () => {
    const viaNginx = [];
    for (let i = 0; i < 6; i++) viaNginx.push(await connect(nginx.wsUrl('/v1/device'), `lost-${i}`));
    await waitFor(async () => ((await a.api('GET', '/v1/devices?prefix=lost-&online=true')).body.devices as unknown[]).length === 6,
      { timeoutMs: CEILING_MS, what: 'six online' });
    const onC = (await Promise.all(viaNginx.map(async (_, i) => ((await view(a, `lost-${i}`)).node === 'node-c' ? `lost-${i}` : undefined)))).filter((id): id is string => id !== undefined);
    expect(onC.length).toBeGreaterThan(0);
    const seqBefore = 10;
    for (const id of onC) {
      const device = viaNginx[Number(id.split('-')[1])]!;
      device.send(encodeTelemetry(seqBefore, [{ n: 'kept', v: 1 }]));
      expect(await device.next(CEILING_MS)).toEqual({ type: 2, seq: seqBefore });
    }
    await c.kill('SIGKILL');
    for (const id of onC) {
      await waitFor(async () => (await view(a, id)).offlineReason === 'node-lost', { timeoutMs: CEILING_MS, what: `${id} node-lost` });
    }
    // The devices reconnect (their backoff): nginx sends them to a node that answers.
    for (const id of onC) await connect(nginx.wsUrl('/v1/device'), id);
    for (const id of onC) {
      await waitFor(async () => ['node-a', 'node-b'].includes((await view(b, id)).node), { timeoutMs: CEILING_MS, what: `${id} back on A or B` });
    }
    // C restarts on a new port; nginx is told; it takes devices again.
    await c.restart();
    await nginx.setUpstreams(upstreams());
    await connect(nginx.wsUrl('/v1/device'), 'after-restart-1');
    await connect(nginx.wsUrl('/v1/device'), 'after-restart-2');
    await connect(nginx.wsUrl('/v1/device'), 'after-restart-3');
    await waitFor(async () => {
      const nodes = await Promise.all(['after-restart-1', 'after-restart-2', 'after-restart-3'].map(async (id) => (await view(a, id)).node));
      return nodes.includes('node-c');
    }, { timeoutMs: CEILING_MS, what: 'the restarted node takes devices again' });
    // What C acknowledged before it died is in InfluxDB (its spool drained, now or after its restart).
    await waitFor(async () => (await cluster.database.query(`SELECT value FROM telemetry WHERE "name" = 'kept'`)).length === onC.length,
      { timeoutMs: CEILING_MS, what: 'readings C acknowledged' });
  });
});
