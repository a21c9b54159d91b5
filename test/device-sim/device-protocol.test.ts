/**
 * One simulated device against a real hub (test/support/hub.ts, real
 * influxd): credentials, REPORTED at connect, COMMAND and DESIRED answered
 * as the protocol says (also when they waited while it was offline), reboot,
 * the seq wrap, ACK 2 and ACK 4 as the hub really sends them, takeover by a
 * newer connection (close 4000) and close 1007. The hub's side is read from
 * its operator API and event bus; ACKs are read off the device's socket.
 *
 * Only a hub that misbehaves on purpose is scripted (fake-hub.ts, last
 * describe): no real hub sends an ACK for a seq it never got or a frame that
 * is no hub message.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, withDefaults, type FleetOptions } from '../../device-sim/index.js';
import type { SimDevice } from '../../device-sim/sim-device.js';
import { decodeHubFrame, encodeAck, encodeTelemetry } from '../../src/protocol/index.js';
import { TestDevice } from '../support/device-client.js';
import { freshDatabase } from '../support/influx.js';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';
import { FakeHub } from './fake-hub.js';
import { InfluxGate } from '../support/influx-gate.js';

/** How long to wait for something the hub or the simulator must do: a ceiling for a busy machine, not a speed claim. */
const CEILING_MS = 15_000;
const WAIT_S = CEILING_MS / 1000;
/** Short backoffs, so a reconnect in a test takes milliseconds. */
const FAST = { baseMs: 20, capMs: 100, rebootPauseMs: 150, retryMs: 100 };
const SIM_FW = 'sim-1.0.0';

/** Default limits, real clock; tests that need other limits start their own. */
let hub: TestHub;
beforeAll(async () => {
  hub = await startHub();
});
afterAll(async () => {
  await hub?.close();
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * One device, `<prefix>00001`, started now. The default rate (one message in
 * almost three hours) means no TELEMETRY unless a test asks for it.
 */
function startDevice(h: TestHub, prefix: string, overrides: Partial<FleetOptions> = {}): Fleet {
  const fleet = new Fleet({
    ...withDefaults({ url: h.deviceUrl, enrollmentKey: ENROLLMENT_KEY, devices: 1, prefix, rate: 0.0001, ...overrides }),
    timing: FAST,
    drainMs: CEILING_MS,
    ...overrides,
  }).start();
  cleanups.push(() => fleet.stop());
  return fleet;
}

type AckSeen = { seq: number; code: number };

/**
 * Every ACK the hub sends on the device's current socket, read by a listener
 * beside the simulator's own. start() opens the socket synchronously, so
 * attaching right after it misses nothing.
 */
function ackLog(device: SimDevice): AckSeen[] {
  const log: AckSeen[] = [];
  device.socket!.on('message', (data: Buffer) => {
    const message = decodeHubFrame(new Uint8Array(data));
    if (!(message instanceof Error) && message.type === 2) log.push({ seq: message.seq, code: message.code ?? 0 });
  });
  return log;
}

async function reportedSettles(h: TestHub, id: string, expected: Record<string, unknown>): Promise<void> {
  const reported = async () => (await h.api('GET', `/v1/devices/${id}/state`)).body.reported;
  await waitFor(async () => isDeepStrictEqual(await reported(), expected), { timeoutMs: CEILING_MS, what: `${id} reported` }).catch(() => {});
  expect(await reported()).toEqual(expected);
}

async function createCommand(h: TestHub, id: string, name: string, args?: unknown): Promise<string> {
  const created = await h.api('POST', `/v1/devices/${id}/commands`, args === undefined ? { name } : { name, args });
  expect(created.status).toBe(202);
  return created.body.id as string;
}

async function finalCommand(h: TestHub, id: string, cid: string): Promise<any> {
  const res = await h.api('GET', `/v1/devices/${id}/commands/${cid}?wait=${WAIT_S}`);
  expect(res.status, `command ${cid} not final: ${JSON.stringify(res.body)}`).toBe(200);
  return res.body;
}

/** Points in InfluxDB for the devices with this prefix. */
async function storedPoints(h: TestHub, prefix: string): Promise<number> {
  const rows = await h.db.query(`SELECT count("value") AS v, count("sum") AS s FROM telemetry WHERE "device" =~ /^${prefix}/`);
  return rows.reduce((n, r) => n + Number(r.v ?? 0) + Number(r.s ?? 0), 0);
}

/** Readings of these devices the hub accepted, counted on its bus: a message stored twice counts twice. */
function acceptedReadings(h: TestHub, prefix: string): { readings: number; messages: number } {
  const counter = { readings: 0, messages: 0 };
  h.app.bus.on('telemetry.accepted', (e) => {
    if (!e.deviceId.startsWith(prefix)) return;
    counter.readings += e.readings.length;
    counter.messages++;
  });
  return counter;
}

describe('simulated device against the real hub', () => {
  it('is accepted with Basic and the derived secret (a wrong key is refused with 401), and reports its state at connect', async () => {
    const fleet = startDevice(hub, 'auth-', { profile: 'thermostat' });
    await reportedSettles(hub, 'auth-00001', { fw: SIM_FW, profile: 'thermostat', interval: 10_000, led: false });
    const device = (await hub.api('GET', '/v1/devices/auth-00001')).body;
    expect(device).toMatchObject({ id: 'auth-00001', provisioning: 'enrollment', online: true });
    expect(fleet.stats.connects).toBe(1);

    const wrong = startDevice(hub, 'auth-wrong-', { enrollmentKey: 'not-the-hub-key' });
    await waitFor(() => wrong.summary().connections.connectFailures['http 401'] === 1, { timeoutMs: CEILING_MS, what: '401' });
    expect(wrong.stats.connects).toBe(0);
  });

  it('answers set_interval, set_led, unknown commands and DESIRED, reporting each change', async () => {
    const id = 'cmd-00001';
    const fleet = startDevice(hub, 'cmd-');
    const accepted = acceptedReadings(hub, 'cmd-');
    await waitFor(() => fleet.snapshot().connected === 1, { timeoutMs: CEILING_MS, what: 'connect' });

    const outcomes = [];
    for (const [name, args] of [['set_interval', { seconds: 0.2 }], ['set_led', { on: true }], ['self_destruct', undefined], ['set_interval', { seconds: 'soon' }]] as const) {
      const done = await finalCommand(hub, id, await createCommand(hub, id, name, args));
      outcomes.push([done.name, done.status, done.result]);
    }
    expect(outcomes).toEqual([
      ['set_interval', 'succeeded', { interval: 0.2 }],
      ['set_led', 'succeeded', { led: true }],
      ['self_destruct', 'rejected', { error: 'unknown command "self_destruct"' }],
      ['set_interval', 'rejected', { error: 'seconds must be a number from 0.01 to 86400' }],
    ]);
    await reportedSettles(hub, id, { fw: SIM_FW, profile: 'thermostat', interval: 0.2, led: true });

    const patch = await hub.api('PATCH', `/v1/devices/${id}/desired`, { interval: 0.25, led: false, colour: 'red' });
    expect(patch.status).toBe(200);
    await reportedSettles(hub, id, { fw: SIM_FW, profile: 'thermostat', interval: 0.25, led: false });
    // colour is not a setting this firmware knows: it stays in the delta.
    expect((await hub.api('GET', `/v1/devices/${id}/state`)).body.delta).toEqual({ colour: 'red' });
    expect(fleet.devices[0]!.settings).toEqual({ intervalS: 0.25, led: false });
    expect(fleet.stats.commands).toEqual({ succeeded: 2, rejected: 2 });
    expect(fleet.stats.desired).toBe(1);
    // The new interval is in force: at the old one (10,000 s) no TELEMETRY would come at all.
    const before = accepted.messages;
    await waitFor(() => accepted.messages >= before + 3, { timeoutMs: CEILING_MS, what: 'telemetry at the new interval' });
  });

  it('gets DESIRED and then the commands that waited while it was offline, and applies them in that order', async () => {
    const id = 'queued-00001';
    expect((await hub.api('PUT', `/v1/devices/${id}`)).status).toBe(201); // the enrollment secret stays valid too
    expect((await hub.api('PATCH', `/v1/devices/${id}/desired`, { interval: 0.5, led: true })).status).toBe(200);
    const cid = await createCommand(hub, id, 'set_led', { on: false });
    const fleet = startDevice(hub, 'queued-');
    expect((await finalCommand(hub, id, cid)).status).toBe('succeeded');
    // DESIRED (led on) first, then the command (led off): off wins only in that order.
    await reportedSettles(hub, id, { fw: SIM_FW, profile: 'thermostat', interval: 0.5, led: false });
    expect(fleet.devices[0]!.settings).toEqual({ intervalS: 0.5, led: false });
  });

  it('reboot: RESULT 0, close 1000, reconnect after the pause, then RESULT 1 on the new connection', async () => {
    const id = 'reboot-00001';
    const log: string[] = [];
    hub.app.bus.on('device.online', (e) => { if (e.deviceId === id) log.push('online'); });
    hub.app.bus.on('device.offline', (e) => { if (e.deviceId === id) log.push(`offline: ${e.reason}`); });
    hub.app.bus.on('command.status', (e) => { if (e.command.deviceId === id) log.push(e.command.status); });
    const fleet = startDevice(hub, 'reboot-');
    await waitFor(() => fleet.snapshot().connected === 1, { timeoutMs: CEILING_MS, what: 'connect' });
    const cid = await createCommand(hub, id, 'reboot');
    expect(await finalCommand(hub, id, cid)).toMatchObject({ status: 'succeeded', result: { rebooted: true } });

    expect(log.filter((e) => !e.startsWith('o'))).toEqual(['queued', 'sent', 'received', 'succeeded']);
    expect(log.filter((e) => e.startsWith('o'))).toEqual(['online', 'offline: closed by device', 'online']);
    expect(log.indexOf('succeeded')).toBeGreaterThan(log.lastIndexOf('online'));
    expect(fleet.stats.disconnects).toEqual({ 1000: 1 });
    expect(fleet.stats.connects).toBe(2);
  });

  it('seq wraps from 2^32-1 to 0, and the hub accepts every message across the wrap', async () => {
    const fleet = startDevice(hub, 'wrap-', { rate: 20, startSeq: 2 ** 32 - 2 });
    const acks = ackLog(fleet.devices[0]!);
    await waitFor(() => acks.length >= 4, { timeoutMs: CEILING_MS, what: 'four ACKs' });
    await fleet.stop();
    expect(acks.slice(0, 4)).toEqual([4294967294, 4294967295, 0, 1].map((seq) => ({ seq, code: 0 })));
    const t = fleet.summary().telemetry;
    expect(t.acknowledged).toEqual({ 0: t.sent });
    expect(fleet.stats.disconnects).toEqual({ 1000: 1 });
    expect(await storedPoints(hub, 'wrap-')).toBe(t.records);
  });

  it('ACK 2 (a pack over the hub\'s PULSEWIRE_MAX_RECORDS): each message dropped, never sent again, nothing stored', async () => {
    const strict = await startHub({ PULSEWIRE_MAX_RECORDS: '2' });
    cleanups.push(() => strict.close());
    const fleet = startDevice(strict, 'ack2-', { rate: 20, batch: 3 });
    const acks = ackLog(fleet.devices[0]!);
    await waitFor(() => acks.length >= 5, { timeoutMs: CEILING_MS, what: 'five ACKs' });
    await fleet.stop();

    expect(acks.every((a) => a.code === 2)).toBe(true);
    // Each seq once, in order: a dropped message is not resent.
    expect(acks.map((a) => a.seq)).toEqual(acks.map((_, i) => i));
    const t = fleet.summary().telemetry;
    expect(t.acknowledged).toEqual({ 2: t.sent });
    expect(t.dropped).toBe(t.sent);
    expect(t.resent).toBe(0);
    expect(t.unacknowledged).toBe(0);
    expect(await storedPoints(strict, 'ack2-')).toBe(0);
  });

  it('ACK 4 (the hub\'s spool full during an InfluxDB outage): kept and resent until accepted, each message stored once', async () => {
    const database = await freshDatabase('ack4');
    const gate = await InfluxGate.start(database.url);
    cleanups.push(() => gate.stop());
    const full = await startHub({ PULSEWIRE_SPOOL_MAX_BYTES: '1024', PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '2000' }, { database, influxUrl: `${gate.url}/${database.database}` });
    cleanups.push(() => full.close());
    const accepted = acceptedReadings(full, 'ack4-');
    gate.shut();
    const fleet = startDevice(full, 'ack4-', { rate: 20, batch: 2 });
    const acks = ackLog(fleet.devices[0]!);
    // A message refused twice proves it was kept and sent again.
    const refusedTwice = () => acks.filter((a) => a.code === 4).some((a, _, all) => all.filter((b) => b.seq === a.seq).length >= 2);
    await waitFor(refusedTwice, { timeoutMs: CEILING_MS, what: 'a message refused with ACK 4 twice' });
    gate.open();
    const refusedSeqs = [...new Set(acks.filter((a) => a.code === 4).map((a) => a.seq))];
    await waitFor(() => refusedSeqs.every((seq) => acks.some((a) => a.seq === seq && a.code === 0)), { timeoutMs: 2 * CEILING_MS, what: 'every refused message accepted later' });
    await fleet.stop();

    // Per seq: any number of 4s, then exactly one 0, and nothing after it.
    const bySeq = new Map<number, number[]>();
    for (const a of acks) bySeq.set(a.seq, [...(bySeq.get(a.seq) ?? []), a.code]);
    for (const [seq, codes] of bySeq) expect(codes.slice(0, -1).every((c) => c === 4) && codes.at(-1) === 0, `seq ${seq}: ${codes}`).toBe(true);
    const t = fleet.summary().telemetry;
    expect(t.acknowledged[4]).toBe(acks.filter((a) => a.code === 4).length);
    expect(t.acknowledged[0]).toBe(t.sent);
    expect(t.dropped).toBe(0);
    expect(t.unacknowledged).toBe(0);
    expect(accepted.readings).toBe(t.records);
    expect(await storedPoints(full, 'ack4-')).toBe(t.records);
  }, 60_000);

  it('close 4000 when a newer connection of the same device takes over: no reconnect at once', async () => {
    const id = 'take-00001';
    const fleet = startDevice(hub, 'take-');
    await waitFor(() => fleet.snapshot().connected === 1, { timeoutMs: CEILING_MS, what: 'connect' });
    // The newer connection answers the hub's ping (autoPong), which is the sign of life a takeover waits for.
    const newer = await TestDevice.connect(hub.deviceUrl, { id });
    cleanups.push(() => newer.close());
    await waitFor(() => fleet.stats.disconnects[4000] === 1, { timeoutMs: CEILING_MS, what: 'close 4000' });
    const device = fleet.devices[0]!;
    expect(device.state).toBe('idle');
    // protocol section 5: "do not reconnect at once"; the simulator waits 60 to 120 s.
    expect(device.wakeAt - Date.now()).toBeGreaterThan(50_000);
    expect(fleet.stats.disconnects).toEqual({ 4000: 1 });
    // The newer connection is the device's live one.
    newer.send(encodeTelemetry(0, [new Map<string, unknown>([['n', 'x'], ['v', 1]])]));
    const ack = await newer.next(CEILING_MS);
    expect(ack).toEqual({ type: 2, seq: 0 });
    expect((await hub.api('GET', `/v1/devices/${id}`)).body.online).toBe(true);
  });

  it('close 1007 after a malformed frame counts a firmware error and reconnects with backoff', async () => {
    const fleet = startDevice(hub, 'bad-', { malformed: 100, chaosMeanMs: { malformed: 50 } });
    await waitFor(() => fleet.stats.connects >= 2, { timeoutMs: CEILING_MS, what: 'reconnect after 1007' });
    await fleet.stop();
    expect(fleet.stats.firmwareErrors).toBeGreaterThan(0);
    expect(fleet.stats.disconnects[1007]).toBe(fleet.stats.firmwareErrors);
    expect(fleet.summary().chaos.malformedSent).toBeGreaterThanOrEqual(fleet.stats.firmwareErrors);
  });
});

describe('simulated device against a hub that misbehaves on purpose (fake-hub.ts)', () => {
  it('an ACK for a seq it never sent, a text frame and bytes that are no hub message: counted as errors, connection and window kept', async () => {
    const fake = await FakeHub.start();
    cleanups.push(() => fake.close());
    fake.onTelemetry = () => {}; // no ACKs until the test says so
    const fleet = new Fleet({
      ...withDefaults({ url: fake.url, enrollmentKey: 'fake-key', devices: 1, prefix: 'fake-', rate: 20 }),
      timing: FAST,
      drainMs: 1_000,
    }).start();
    cleanups.push(() => fleet.stop());
    await waitFor(() => fake.of(1).length >= 1, { timeoutMs: CEILING_MS, what: 'a TELEMETRY' });
    const ws = fake.connections[0]!;
    ws.send(encodeAck(123_456));
    ws.send('not binary');
    ws.send(Buffer.from('ff', 'hex'));
    await waitFor(() => Object.values(fleet.stats.errors).reduce((a, b) => a + b, 0) === 3, { timeoutMs: CEILING_MS, what: 'three errors' });
    expect(fleet.stats.errors).toEqual({ 'ack for unknown seq': 1, 'bad hub frame': 2 });
    const device = fleet.devices[0]!;
    expect(device.state).toBe('open');
    expect(device.window.length).toBeGreaterThan(0); // nothing was taken off by the stray ACK
    expect(fake.connections).toHaveLength(1);
    // Still a working device: real ACKs take its messages off the window.
    fake.onTelemetry = (socket, seq) => socket.send(encodeAck(seq));
    for (const p of device.window) ws.send(encodeAck(p.seq));
    await fleet.stop();
    expect(fleet.summary().telemetry.unacknowledged).toBe(0);
  });
});
