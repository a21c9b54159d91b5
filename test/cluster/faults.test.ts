/**
 * A cluster of real hub processes losing a node, a job runner, and NATS
 * itself. Each node's spool is its own; the claims below are that nothing a
 * node acknowledged is lost, whatever happens to it.
 */
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { bucketName } from '../../src/cluster/nats-names.js';
import { encodeResult, encodeTelemetry } from '../../src/protocol/encode.js';
import { startCluster, type ClusterNodeProcess, type TestCluster } from '../support/cluster.js';
import { TestDevice } from '../support/device-client.js';
import { InfluxGate } from '../support/influx-gate.js';
import { startOwnNatsServer } from '../support/nats.js';
import { until, waitFor } from '../support/wait.js';

const CEILING_MS = 30_000;

/** A device connected to `node` that sends `count` readings (seq from `from`) and waits for every ACK 0. */
async function sendAll(node: ClusterNodeProcess, id: string, from: number, count: number): Promise<TestDevice> {
  const device = await TestDevice.connect(node.hub.deviceUrl, { id });
  for (let seq = from; seq < from + count; seq++) device.send(encodeTelemetry(seq, [{ n: 'n', v: seq }]));
  for (let i = 0; i < count; i++) expect(await device.next(CEILING_MS)).toMatchObject({ type: 2 });
  return device;
}

async function deviceOn(node: ClusterNodeProcess, id: string) {
  return (await node.api('GET', `/v1/devices/${id}`)).body as { online: boolean; offlineReason: string | null };
}

describe('a cluster losing parts', { timeout: 180_000 }, () => {
  let cluster: TestCluster | undefined;
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
    await cluster?.close();
    cluster = undefined;
  });

  it('kill -9 of a node: its devices are node-lost, come back through the others, and its spool reaches InfluxDB after its restart', async () => {
    // Node C writes through a gate the test keeps shut: what C acknowledges stays in C's spool.
    const gate = await InfluxGate.start(inject('influxUrl'));
    cleanup.push(() => gate.stop());
    gate.shut();
    // The gate forwards to the suite's influxd: C's database is the cluster's.
    cluster = await startCluster({ nodes: 3, nodeEnv: (id, database): Record<string, string> => (id === 'node-c' ? { PULSEWIRE_INFLUX_URL: `${gate.url}/${database.database}` } : {}) });
    const [a, b, c] = cluster.nodes as [ClusterNodeProcess, ClusterNodeProcess, ClusterNodeProcess];
    expect([a, b, c].map((n) => n.id)).toEqual(['node-a', 'node-b', 'node-c']);
    const devices = [await sendAll(a, 'k-a1', 0, 5), await sendAll(b, 'k-b1', 0, 5), await sendAll(c, 'k-c1', 0, 5), await sendAll(c, 'k-c2', 0, 5)];
    cleanup.push(async () => { for (const d of devices) await d.close(); });
    for (const id of ['k-c1', 'k-c2']) await waitFor(async () => (await deviceOn(a, id)).online, { timeoutMs: CEILING_MS, what: `${id} online on A` });

    expect(await c.kill('SIGKILL')).toBeNull();
    // Listed offline with node-lost on every node that is left, within the stated bound (lease 1.5 s plus a third).
    for (const node of [a, b]) {
      for (const id of ['k-c1', 'k-c2']) {
        await waitFor(async () => (await deviceOn(node, id)).offlineReason === 'node-lost', { timeoutMs: CEILING_MS, what: `${id} node-lost on ${node.id}` });
      }
    }
    // The devices reconnect through the others (as their backoff would) and are online again at once.
    const moved = [await sendAll(a, 'k-c1', 5, 2), await sendAll(b, 'k-c2', 5, 2)];
    cleanup.push(async () => { for (const d of moved) await d.close(); });
    await waitFor(async () => (await deviceOn(b, 'k-c1')).online && (await deviceOn(a, 'k-c2')).online, { timeoutMs: CEILING_MS, what: 'moved devices online' });

    // C comes back with InfluxDB reachable, and drains what it acknowledged before it died.
    gate.open();
    await c.restart();
    const count = async (id: string) => (await cluster!.database.query<{ time: number; count: number }>(`SELECT count(value) FROM telemetry WHERE device = '${id}'`))[0]?.count ?? 0;
    for (const [id, expected] of [['k-a1', 5], ['k-b1', 5], ['k-c1', 7], ['k-c2', 7]] as const) {
      await waitFor(async () => (await count(id)) === expected, { timeoutMs: CEILING_MS, what: `${expected} readings of ${id} in InfluxDB` });
    }
  });

  it('a job keeps rolling out when the node running it is killed', async () => {
    cluster = await startCluster({ nodes: 2 });
    const [a, b] = cluster.nodes as [ClusterNodeProcess, ClusterNodeProcess];
    const ids = Array.from({ length: 12 }, (_, i) => `job-${String(i).padStart(2, '0')}`);
    for (const id of ids) expect((await a.api('PUT', `/v1/devices/${id}`)).status).toBe(201);
    const created = await b.api('POST', '/v1/jobs', { command: { name: 'update' }, target: { prefix: 'job-' }, rolloutPerSecond: 2 });
    expect(created.status).toBe(201);
    await waitFor(async () => (await b.api('GET', `/v1/jobs/${created.body.id}`)).body.dispatched >= 2, { timeoutMs: CEILING_MS, what: 'rollout started' });
    // Which node runs it: the holder of the jobs lease, read from JetStream itself.
    const holder = await leaseHolder(cluster, 'jobs');
    const [runner, survivor] = holder === a.id ? [a, b] : [b, a];
    await runner.kill('SIGKILL');
    await waitFor(async () => (await survivor.api('GET', `/v1/jobs/${created.body.id}`)).body.dispatched === ids.length, { timeoutMs: 60_000, what: 'every target dispatched after the runner died' });
    for (const id of ids) {
      const commands = (await survivor.api('GET', `/v1/devices/${id}/commands`)).body.commands as { jobId?: string }[];
      expect(commands.filter((c) => c.jobId === created.body.id)).toHaveLength(1);
    }
  });

  it('a nats-server restart with its store kept is survived by every node, with nothing lost', async () => {
    const nats = await startOwnNatsServer();
    cleanup.push(() => nats.stop());
    cluster = await startCluster({ nodes: 2, natsUrl: nats.server.url });
    const [a, b] = cluster.nodes as [ClusterNodeProcess, ClusterNodeProcess];
    const first = await sendAll(a, 'n-1', 0, 5);
    cleanup.push(() => first.close());
    await nats.server.restart({
      // While NATS is down: the device keeps its connection and its readings are acknowledged (the spool is local).
      whileDown: async () => {
        for (let seq = 5; seq < 10; seq++) first.send(encodeTelemetry(seq, [{ n: 'n', v: seq }]));
        for (let i = 0; i < 5; i++) expect(await first.next(CEILING_MS)).toMatchObject({ type: 2 });
        expect((await fetch(`${a.hub.baseUrl}/readyz`)).status).toBe(503);
      },
    });
    for (const node of [a, b]) {
      await waitFor(async () => (await fetch(`${node.hub.baseUrl}/readyz`)).status === 200, { timeoutMs: CEILING_MS, what: `${node.id} ready again` });
    }
    // Shared state works again from both nodes: a command through B reaches the device on A.
    const posted = b.api('POST', '/v1/devices/n-1/commands?wait=20', { name: 'ping' });
    const command = await until(async () => first.next(CEILING_MS), CEILING_MS);
    first.send(encodeResult((command as { commandId: string }).commandId, 1));
    expect((await posted).body.status).toBe('succeeded');
    await waitFor(async () => ((await cluster!.database.query<{ time: number; count: number }>(`SELECT count(value) FROM telemetry WHERE device = 'n-1'`))[0]?.count ?? 0) === 10,
      { timeoutMs: CEILING_MS, what: '10 readings in InfluxDB' });
  });

  it('SIGTERM on a node closes its devices with 1001; they come back through another node with nothing lost', async () => {
    cluster = await startCluster({ nodes: 2 });
    const [a, b] = cluster.nodes as [ClusterNodeProcess, ClusterNodeProcess];
    const device = await sendAll(a, 'd-1', 0, 5);
    const closing = device.closed;
    expect(await a.kill('SIGTERM')).toBe(0);
    expect((await closing).code).toBe(1001);
    const again = await sendAll(b, 'd-1', 5, 5);
    cleanup.push(() => again.close());
    await waitFor(async () => ((await cluster!.database.query<{ time: number; count: number }>(`SELECT count(value) FROM telemetry WHERE device = 'd-1'`))[0]?.count ?? 0) === 10,
      { timeoutMs: CEILING_MS, what: '10 readings in InfluxDB' });
    expect(await deviceOn(b, 'd-1')).toMatchObject({ online: true, offlineReason: null });
  });
});

async function leaseHolder(cluster: TestCluster, lease: string): Promise<string> {
  const nc = await connect({ servers: inject('natsUrl') });
  try {
    const kv = await new Kvm(jetstream(nc)).open(bucketName('leases', cluster.name));
    const entry = await kv.get(lease);
    return (entry!.json<{ holder: string }>()).holder;
  } finally {
    await nc.close();
  }
}
