/**
 * Alert rules on two hub nodes of one cluster (the suite's real nats-server,
 * JetStream stores): a rule created on one node is evaluated on the node
 * holding the device, and only there, even while a dashboard on the other
 * node makes it receive the device's readings; when the device is taken
 * over by the other node, the alert is not fired again there and the new
 * holder resolves it, once. Each node's dashboards see the alert fire and
 * resolve live, whichever node did it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertView } from '../../src/alerts/types.js';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { LiveClient } from '../live/live-client.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { startTwoNodes } from '../support/two-nodes.js';
import { until, waitFor } from '../support/wait.js';

describe('alert rules in a cluster of two nodes', () => {
  const hubs: TestHub[] = [];
  let a: TestHub;
  let b: TestHub;
  const events: { node: string; type: string; alert: AlertView }[] = [];

  beforeAll(async () => {
    [a, b] = await startTwoNodes(hubs, 'al');
    for (const [node, hub] of [['a', a], ['b', b]] as const) {
      hub.app.bus.on('alert.firing', ({ alert }) => events.push({ node, type: 'firing', alert }));
      hub.app.bus.on('alert.resolved', ({ alert }) => events.push({ node, type: 'resolved', alert }));
    }
  });
  afterAll(async () => {
    for (const hub of hubs.reverse()) await hub.close();
  });

  it('fires once on the holding node, is known to both, and after a takeover is resolved once by the new holder', async () => {
    const rule = (await a.api('POST', '/v1/rules', { name: 'hot', devices: { prefix: 'cl-' }, series: 'temp', condition: { kind: 'above', threshold: 50 } })).body;
    await waitFor(() => b.app.alerts.evaluating, { what: 'node b has the rule' });
    // A dashboard on each node on the whole fleet: node b receives node a's readings too.
    const live = await LiveClient.connect(b.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    const liveA = await LiveClient.connect(a.baseUrl);
    await liveA.next((f) => f.type === 'snapshot');
    // Any frame so far (the alert may share a tick with the readings awaited below).
    const alertFrame = (client: LiveClient, state: string) =>
      until(() => client.seen.find((f) => f.type === 'events' && Array.isArray(f.alerts) && (f.alerts as { state: string }[]).some((x) => x.state === state)));

    const onA = await TestDevice.connect(a.deviceUrl, { id: 'cl-1' });
    onA.send(encodeTelemetry(1, [{ n: 'temp', v: 60 }]));
    expect(await onA.next()).toMatchObject({ type: 2, seq: 1 });
    await live.next((f) => f.type === 'events' && Array.isArray(f.readings) && f.readings.some((r: { device: string }) => r.device === 'cl-1'));
    await waitFor(() => events.length >= 1, { what: 'firing' });
    // Node b's dashboard sees the alert node a fired, live (not only in its next snapshot).
    expect((await alertFrame(live, 'firing')).alerts).toMatchObject([{ id: `${rule.id}/cl-1/temp`, state: 'firing', value: 60 }]);
    for (const hub of [a, b]) {
      await until(async () => ((await hub.api('GET', '/v1/alerts')).body.alerts.length === 1 ? true : undefined));
    }

    // The device moves to node b (node a closes it with 4000) and is still hot, then cools down.
    const onB = await TestDevice.connect(b.deviceUrl, { id: 'cl-1' });
    await onA.closed;
    onB.send(encodeTelemetry(2, [{ n: 'temp', v: 70 }]));
    expect(await onB.next()).toMatchObject({ type: 2, seq: 2 });
    onB.send(encodeTelemetry(3, [{ n: 'temp', v: 40 }]));
    expect(await onB.next()).toMatchObject({ type: 2, seq: 3 });
    await waitFor(() => events.length >= 2, { what: 'resolved' });
    for (const hub of [a, b]) {
      await until(async () => ((await hub.api('GET', '/v1/alerts')).body.alerts.length === 0 ? true : undefined));
    }
    const id = `${rule.id}/cl-1/temp`;
    expect(events.map((e) => [e.node, e.type, e.alert.id, e.alert.value])).toEqual([['a', 'firing', id, 60], ['b', 'resolved', id, 40]]);
    // And node a's dashboard sees node b resolve it.
    expect((await alertFrame(liveA, 'resolved')).alerts).toMatchObject([{ id, state: 'resolved' }]);
    await onB.close();
    await live.close();
    await liveA.close();
  });
});
