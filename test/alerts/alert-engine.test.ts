/**
 * The alert engine (src/alerts/alert-engine.ts) over each store backend
 * (lmdb, JetStream on the suite's nats-server), with a real bus, a moved
 * clock and readings put on the bus as the gateway does: events and points
 * once per firing and resolving, staleness by the sweep, firing alerts kept
 * across a restart, and two engines on one cluster's stores (a device moving
 * between nodes) announcing an alert once.
 */
import type { IPoint } from 'influx';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlertEngine, type KnownSeries } from '../../src/alerts/alert-engine.js';
import { RuleService } from '../../src/alerts/rule-service.js';
import type { AlertView, NewRule } from '../../src/alerts/types.js';
import { EventBus } from '../../src/events/bus.js';
import type { Reading } from '../../src/protocol/messages.js';
import { silentLogger } from '../../src/storage/logger.js';
import { collect, type BucketKey } from '../../src/stores/bucket.js';
import type { Stores } from '../../src/stores/stores.js';
import { BACKENDS, type Backend, type StoresHandle } from '../support/stores.js';
import { waitFor } from '../support/wait.js';

type Node = {
  bus: EventBus; engine: AlertEngine; rules: RuleService; events: { type: string; alert: AlertView }[]; points: IPoint[];
  /** What the engine's onAlert observer heard (the live stream's feed). */
  observed: AlertView[];
  /** Cluster nodes: the payloads their bridge brought from another node. */
  remote: WeakSet<object>;
};

const reading = (name: string, value: number): Reading => ({ name, kind: 'value', value, timeUs: Date.now() * 1000 });

describe.each(BACKENDS)('alert engine on $name', (backend: Backend) => {
  let handle: StoresHandle;
  let clock: number;
  const nodes: Node[] = [];

  /** A node of one process, or (`clustered`) of a cluster whose bridge's copies are the payloads in `remote`. */
  async function node(stores: Stores, clustered = false, known?: KnownSeries[]): Promise<Node> {
    const bus = new EventBus();
    const points: IPoint[] = [];
    const remote = new WeakSet<object>();
    const engine = new AlertEngine({
      bus, rules: stores.alertRules, alerts: stores.alerts, logger: silentLogger, now: () => clock, sweepMs: 3_600_000,
      points: { append: async (_device, p) => { points.push(...p); } },
      ...(clustered ? { isRemote: (payload: object) => remote.has(payload) } : {}),
      ...(known ? { knownSeries: () => known } : {}),
    });
    const events: Node['events'] = [];
    bus.on('alert.firing', ({ alert }) => events.push({ type: 'firing', alert }));
    bus.on('alert.resolved', ({ alert }) => events.push({ type: 'resolved', alert }));
    await engine.start();
    const observed: AlertView[] = [];
    engine.onAlert((alert) => observed.push(alert));
    const created = { bus, engine, rules: new RuleService({ bucket: stores.alertRules, engine, now: () => clock }), events, points, observed, remote };
    nodes.push(created);
    return created;
  }

  const send = (n: Node, deviceId: string, name: string, value: number) => n.bus.emit('telemetry.accepted', { deviceId, readings: [reading(name, value)] });
  /** Another node's reading, as the bridge brings it to this one's bus (for its dashboards). */
  const bridged = (n: Node, deviceId: string, name: string, value: number) => {
    const payload = { deviceId, readings: [reading(name, value)] };
    n.remote.add(payload);
    n.bus.emit('telemetry.accepted', payload);
  };
  /** The device came online on node `n` itself, or (`elsewhere`) the bridge says it did on another node. */
  const online = (n: Node, deviceId: string, elsewhere: boolean) => {
    const payload = { deviceId, at: clock, remoteAddress: '127.0.0.1', method: 'secret' as const };
    if (elsewhere) n.remote.add(payload);
    n.bus.emit('device.online', payload);
  };
  const hot: NewRule = { name: 'too hot', devices: { prefix: 'th-' }, series: 'temperature', condition: { kind: 'above', threshold: 30, clearAt: 25 }, forSeconds: 10 };

  beforeEach(async () => {
    clock = 1_000_000;
    handle = await backend.open();
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.engine.close();
    await handle.close();
  });

  it('listens to readings only while a rule exists', async () => {
    const n = await node(handle.stores);
    expect(n.engine.evaluating).toBe(false);
    expect(n.bus.hasListeners('telemetry.accepted')).toBe(false);
    const rule = await n.rules.create(hot);
    expect(n.engine.evaluating).toBe(true);
    await n.rules.remove(rule.id);
    expect(n.engine.evaluating).toBe(false);
    expect(n.bus.hasListeners('telemetry.accepted')).toBe(false);
  });

  it('fires once after the duration, resolves once past clearAt, with a bus event, a store record and a point each', async () => {
    const n = await node(handle.stores);
    const rule = await n.rules.create(hot);
    send(n, 'th-1', 'temperature', 31);
    send(n, 'th-1', 'humidity', 99); // another series: not this rule's
    send(n, 'other-1', 'temperature', 99); // another device: not this rule's
    clock += 9_000;
    send(n, 'th-1', 'temperature', 32);
    expect(n.events).toEqual([]);
    clock += 1_000;
    send(n, 'th-1', 'temperature', 33);
    await waitFor(() => n.events.length === 1, { what: 'alert.firing' });
    const id = `${rule.id}/th-1/temperature`;
    expect(n.events[0]).toEqual({ type: 'firing', alert: {
      id, ruleId: rule.id, ruleName: 'too hot', deviceId: 'th-1', series: 'temperature', condition: hot.condition, state: 'firing', value: 33, firingSince: 1_010_000,
    } });
    expect(n.engine.firing().map((a) => a.id)).toEqual([id]);
    expect((await collect(handle.stores.alerts.entries())).map((e) => e.value.id)).toEqual([id]);
    // Still above, then between clearAt and the threshold: still firing, nothing announced.
    send(n, 'th-1', 'temperature', 40);
    send(n, 'th-1', 'temperature', 27);
    clock += 5_000;
    send(n, 'th-1', 'temperature', 25);
    await waitFor(() => n.events.length === 2, { what: 'alert.resolved' });
    expect(n.events[1]).toMatchObject({ type: 'resolved', alert: { id, state: 'resolved', value: 25, firingSince: 1_010_000, resolvedAt: 1_015_000 } });
    expect(n.engine.firing()).toEqual([]);
    expect(await collect(handle.stores.alerts.entries())).toEqual([]);
    // The live stream's feed heard the same two, with the same views (the value that resolved it included).
    expect(n.observed).toEqual(n.events.map((e) => e.alert));
    expect(n.points.map((p) => [p.measurement, p.tags, p.fields])).toEqual([
      ['alert', { rule: rule.id, device: 'th-1', series: 'temperature' }, { state: 'firing', value: 33 }],
      ['alert', { rule: rule.id, device: 'th-1', series: 'temperature' }, { state: 'resolved', value: 25 }],
    ]);
  });

  it("matches a series by its name or by its name under the device's own base name, nothing else", async () => {
    const n = await node(handle.stores);
    const rule = await n.rules.create({ ...hot, forSeconds: 0 });
    send(n, 'th-1', 'th-2/temperature', 50); // another device's base name
    send(n, 'th-1', 'th-1/temperatures', 50);
    send(n, 'th-1', 'th-1:temperature', 50);
    send(n, 'th-1', 'x/th-1/temperature', 50);
    send(n, 'th-1', 'th-1/temperature', 50);
    await waitFor(() => n.events.length === 1, { what: 'firing' });
    send(n, 'th-3', 'temperature', 50);
    await waitFor(() => n.events.length === 2, { what: 'firing' });
    expect(n.events.map((e) => e.alert.id)).toEqual([`${rule.id}/th-1/temperature`, `${rule.id}/th-3/temperature`]);
  });

  it('staleness: one sweep fires a device named by id that never sent, and one that went quiet; a reading resolves it', async () => {
    const n = await node(handle.stores);
    const rule = await n.rules.create({ name: 'quiet', devices: { ids: ['s-1', 's-2'] }, series: 'temperature', condition: { kind: 'stale', afterSeconds: 60 } });
    clock += 30_000;
    send(n, 's-2', 'temperature', 20);
    clock += 30_000;
    n.engine.sweep();
    await waitFor(() => n.events.length === 1, { what: 'stale s-1' });
    expect(n.events[0]!.alert).toMatchObject({ deviceId: 's-1', state: 'firing', firingSince: 1_060_000 });
    expect(n.events[0]!.alert.value).toBeUndefined();
    clock += 30_000;
    n.engine.sweep();
    await waitFor(() => n.events.length === 2, { what: 'stale s-2' });
    expect(n.events[1]!.alert).toMatchObject({ deviceId: 's-2', state: 'firing' });
    n.engine.sweep();
    send(n, 's-1', 'temperature', 21);
    await waitFor(() => n.events.length === 3, { what: 'resolved s-1' });
    expect(n.events[2]!.alert).toMatchObject({ id: `${rule.id}/s-1/temperature`, state: 'resolved', resolvedAt: 1_090_000 });
    expect(n.events[2]!.alert.value).toBeUndefined();
    expect(n.engine.firing().map((a) => a.deviceId)).toEqual(['s-2']);
  });

  it('staleness: a new prefix rule watches the devices known to send its series, numeric ones, so one already quiet fires', async () => {
    const n = await node(handle.stores, false, [
      { device: 'q-1', name: 'temperature', v: 20 },
      { device: 'q-2', name: 'q-2/temperature', v: 21 }, // under its own base name
      { device: 'q-3', name: 'humidity', v: 40 }, // another series
      { device: 'q-4', name: 'temperature', v: 'n/a' }, // not a number: not a reading the rule counts
      { device: 'other', name: 'temperature', v: 19 }, // not the prefix
    ]);
    const rule = await n.rules.create({ name: 'quiet', devices: { prefix: 'q-' }, series: 'temperature', condition: { kind: 'stale', afterSeconds: 60 } });
    clock += 59_000;
    n.engine.sweep();
    clock += 1_000;
    n.engine.sweep();
    await waitFor(() => n.events.length === 2, { what: 'q-1 and q-2 stale' });
    expect(n.events.map((e) => e.alert.id).sort()).toEqual([`${rule.id}/q-1/temperature`, `${rule.id}/q-2/temperature`]);
    expect(n.events.map((e) => e.alert.firingSince)).toEqual([1_060_000, 1_060_000]);
    // Known again later (the live stream seeded after a restart): the tracks there are left alone, no second firing.
    n.engine.watchKnown([{ device: 'q-1', name: 'temperature', v: 20 }]);
    n.engine.sweep();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(n.events).toHaveLength(2);
  });

  it('a firing alert survives a restart: not announced again while still crossed, resolved once by the next run', async () => {
    const first = await node(handle.stores);
    const rule = await first.rules.create({ ...hot, forSeconds: 0 });
    send(first, 'th-9', 'temperature', 50);
    await waitFor(() => first.events.length === 1, { what: 'firing' });
    await first.engine.close();
    nodes.splice(nodes.indexOf(first), 1);
    const stores = await handle.reopen();

    const second = await node(stores);
    expect(second.engine.firing()).toMatchObject([{ id: `${rule.id}/th-9/temperature`, state: 'firing', value: 50 }]);
    send(second, 'th-9', 'temperature', 51);
    second.engine.sweep();
    send(second, 'th-9', 'temperature', 20);
    await waitFor(() => second.events.length === 1, { what: 'resolved after restart' });
    expect(second.events).toMatchObject([{ type: 'resolved', alert: { id: `${rule.id}/th-9/temperature`, value: 20 } }]);
  });

  it('deleting a rule resolves its firing alerts; a removed device\'s alerts resolve too', async () => {
    const n = await node(handle.stores);
    const a = await n.rules.create({ ...hot, forSeconds: 0 });
    const b = await n.rules.create({ ...hot, name: 'hot b', forSeconds: 0 });
    send(n, 'th-1', 'temperature', 50);
    send(n, 'th-2', 'temperature', 50);
    await waitFor(() => n.events.length === 4, { what: 'four alerts firing' });
    await n.rules.remove(a.id);
    await waitFor(() => n.events.length === 6, { what: "rule a's alerts resolved" });
    expect(n.events.slice(4).map((e) => [e.type, e.alert.ruleId]).sort()).toEqual([['resolved', a.id], ['resolved', a.id]]);
    n.bus.emit('device.removed', { deviceId: 'th-2', at: clock });
    await waitFor(() => n.events.length === 7, { what: "th-2's alert resolved" });
    expect(n.events[6]).toMatchObject({ type: 'resolved', alert: { ruleId: b.id, deviceId: 'th-2' } });
    expect(n.engine.firing().map((x) => x.id)).toEqual([`${b.id}/th-1/temperature`]);
  });

  /** The alerts store with its creates held until `open()`: an alert stays in flight while the test changes its rule. */
  function heldCreates(stores: Stores): { stores: Stores; open: () => void } {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => { open = resolve; });
    const alerts = new Proxy(stores.alerts, {
      get(target, prop) {
        if (prop === 'create') return async (key: BucketKey, value: AlertView) => { await gate; return target.create(key, value); };
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    return { stores: { ...stores, alerts }, open };
  }

  it.each([
    ['its rule is deleted', async (n: Node, id: string) => { await n.rules.remove(id); }],
    ['its rule is changed to another series', async (n: Node, id: string) => { await n.rules.update(id, { series: 'humidity' }); }],
    ['its device is removed', async (n: Node) => { n.bus.emit('device.removed', { deviceId: 'th-1', at: clock }); }],
  ])('an alert still being stored when %s resolves too, and nothing is left firing', async (_how, change) => {
    const held = heldCreates(handle.stores);
    const n = await node(held.stores);
    const rule = await n.rules.create({ ...hot, forSeconds: 0 });
    send(n, 'th-1', 'temperature', 50);
    await change(n, rule.id);
    held.open();
    await waitFor(() => n.events.length === 2, { what: 'fired, then resolved' });
    expect(n.events.map((e) => [e.type, e.alert.id])).toEqual([['firing', `${rule.id}/th-1/temperature`], ['resolved', `${rule.id}/th-1/temperature`]]);
    expect(n.engine.firing()).toEqual([]);
    expect(await collect(handle.stores.alerts.entries())).toEqual([]);
  });

  it('a changed threshold applies from the next reading: the firing alert resolves when a reading says so', async () => {
    const n = await node(handle.stores);
    const rule = await n.rules.create({ ...hot, forSeconds: 0 });
    send(n, 'th-1', 'temperature', 28);
    await n.rules.update(rule.id, { condition: { kind: 'above', threshold: 20 } });
    send(n, 'th-1', 'temperature', 28);
    await waitFor(() => n.events.length === 1, { what: 'firing at the new threshold' });
    await n.rules.update(rule.id, { condition: { kind: 'above', threshold: 100 } });
    expect(n.engine.firing()).toHaveLength(1);
    send(n, 'th-1', 'temperature', 28);
    await waitFor(() => n.events.length === 2, { what: 'resolved at the new threshold' });
    expect(n.events.map((e) => e.type)).toEqual(['firing', 'resolved']);
  });

  it('two nodes on one store: a device whose node died goes stale once, and the node it comes back to resolves it', async () => {
    const a = await node(handle.stores, true);
    const b = await node(handle.stores, true);
    const rule = await a.rules.create({ name: 'quiet', devices: { prefix: 'q-' }, series: 'temperature', condition: { kind: 'stale', afterSeconds: 60 } });
    await waitFor(() => b.engine.evaluating, { what: 'rule seen by node b' });
    for (const n of [a, b]) n.bus.emit('device.offline', { deviceId: 'q-1', at: clock, reason: 'node-lost' });
    clock += 30_000;
    for (const n of [a, b]) n.engine.sweep();
    expect([...a.events, ...b.events]).toEqual([]);
    clock += 30_000;
    for (const n of [a, b]) n.engine.sweep();
    await waitFor(() => a.engine.firing().length === 1 && b.engine.firing().length === 1, { what: 'firing known to both' });
    for (const n of [a, b]) n.engine.sweep();
    expect([...a.events, ...b.events].map((e) => [e.type, e.alert.id])).toEqual([['firing', `${rule.id}/q-1/temperature`]]);

    online(b, 'q-1', false);
    online(a, 'q-1', true);
    send(b, 'q-1', 'temperature', 20);
    await waitFor(() => [...a.events, ...b.events].length === 2, { what: 'resolved' });
    expect(b.events.at(-1)).toMatchObject({ type: 'resolved', alert: { deviceId: 'q-1' } });
    // Node a stopped watching it: its silence there is not staleness.
    clock += 120_000;
    a.engine.sweep();
    send(b, 'q-1', 'temperature', 20);
    b.engine.sweep();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect([...a.events, ...b.events]).toHaveLength(2);
  });

  it('two nodes on one store: a device moving from one to the other fires once and is resolved by the new holder', async () => {
    const a = await node(handle.stores, true);
    const b = await node(handle.stores, true);
    const rule = await a.rules.create({ ...hot, forSeconds: 0 });
    await waitFor(() => b.engine.evaluating, { what: 'rule seen by node b' });
    send(a, 'th-1', 'temperature', 50);
    // Node b hears the reading too (the bridge, for its dashboards) and leaves it alone.
    bridged(b, 'th-1', 'temperature', 50);
    await waitFor(() => b.engine.firing().length === 1, { what: 'node b knows the alert fires' });
    online(b, 'th-1', false);
    // Node a, which held the device until now (and keeps its runtime a while), hears b's readings through the
    // bridge, even before it hears that the device came online there and before b's own evaluation is stored:
    // they are not its to evaluate.
    bridged(a, 'th-1', 'temperature', 51);
    bridged(a, 'th-1', 'temperature', 10);
    send(b, 'th-1', 'temperature', 51);
    send(b, 'th-1', 'temperature', 10);
    online(a, 'th-1', true);
    await waitFor(() => b.events.length === 1, { what: 'resolved by node b' });
    await waitFor(() => a.engine.firing().length === 0, { what: 'node a hears it resolved' });
    expect(a.events.map((e) => e.type)).toEqual(['firing']);
    expect(b.events.map((e) => [e.type, e.alert.id])).toEqual([['resolved', `${rule.id}/th-1/temperature`]]);
    // Each node's live stream hears both, once: its own with the value, the other node's from the store (no resolving value there).
    const id = `${rule.id}/th-1/temperature`;
    await waitFor(() => a.observed.length === 2, { what: 'node a observed the resolving' });
    expect(a.observed).toMatchObject([{ id, state: 'firing', value: 50 }, { id, state: 'resolved' }]);
    expect(a.observed[1]!.value).toBeUndefined();
    expect(b.observed).toMatchObject([{ id, state: 'firing', value: 50 }, { id, state: 'resolved', value: 10 }]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([a.observed.length, b.observed.length]).toEqual([2, 2]);
  });
});
