/**
 * One simulated device against a scripted hub (fake-hub.ts): the parts of
 * the protocol the real hub does not send yet (commands, DESIRED, ACK 2/4,
 * close 4000) and the byte-exact details (resend bytes, seq wrap, auth).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeAck, encodeCommand, encodeDesired, type ReportedMessage, type ResultMessage } from '../../src/protocol/index.js';
import { deriveEnrollmentSecret } from '../../src/registry/secrets.js';
import { Fleet, withDefaults, type FleetOptions } from '../../device-sim/index.js';
import { FakeHub } from './fake-hub.js';
import { sleep, waitFor } from '../support/wait.js';

const KEY = 'fake-hub-enrollment-key';
let hub: FakeHub | undefined;
let fleet: Fleet | undefined;
afterEach(async () => {
  await fleet?.stop();
  await hub?.close();
  fleet = hub = undefined;
});

function startDevice(h: FakeHub, overrides: Partial<FleetOptions> = {}): Fleet {
  const options: FleetOptions = {
    ...withDefaults({ url: h.url, enrollmentKey: KEY, devices: 1, prefix: 'fake-', rate: 0.0001, ...overrides }),
    timing: { baseMs: 20, capMs: 100, rebootPauseMs: 150, retryMs: 100 },
    drainMs: 300,
    ...overrides,
  };
  return new Fleet(options).start();
}

const state = (r: { msg: unknown }) => Object.fromEntries((r.msg as ReportedMessage).state);
const results = (h: FakeHub) => h.of(4).map((r) => r.msg as ResultMessage);

describe('simulated device, protocol details', () => {
  it('authenticates with Basic and the derived secret, and reports its state at connect', async () => {
    hub = await FakeHub.start();
    fleet = startDevice(hub, { profile: 'thermostat', rate: 0.5 });
    await waitFor(() => hub!.of(5).length === 1, { what: 'REPORTED' });
    const expected = Buffer.from(`fake-00001:${deriveEnrollmentSecret(KEY, 'fake-00001')}`).toString('base64');
    expect(hub.authorizations[0]).toBe(`Basic ${expected}`);
    expect(state(hub.of(5)[0]!)).toEqual({ fw: 'sim-1.0.0', profile: 'thermostat', interval: 2, led: false });
  });

  it('answers set_interval, set_led, unknown commands and DESIRED, reporting each change', async () => {
    hub = await FakeHub.start();
    fleet = startDevice(hub);
    await waitFor(() => hub!.of(5).length === 1, { what: 'connect' });
    const ws = hub.connections[0]!;
    ws.send(encodeCommand('c-1', 'set_interval', { seconds: 0.2 }));
    ws.send(encodeCommand('c-2', 'set_led', { on: true }));
    ws.send(encodeCommand('c-3', 'self_destruct', null));
    ws.send(encodeCommand('c-4', 'set_interval', { seconds: 'soon' }));
    ws.send(encodeDesired(7, { interval: 0.25, led: false, colour: 'red' }));
    await waitFor(() => results(hub!).length === 4 && hub!.of(5).length === 4, { what: 'results and reports' });

    expect(results(hub).map((r) => [r.commandId, r.status])).toEqual([['c-1', 1], ['c-2', 1], ['c-3', 3], ['c-4', 3]]);
    expect(hub.of(5).slice(1).map(state)).toEqual([{ interval: 0.2 }, { led: true }, { interval: 0.25, led: false }]);
    expect(fleet.devices[0]!.settings).toEqual({ intervalS: 0.25, led: false });
    // The new interval is in force: several TELEMETRY within a second.
    await sleep(1_000);
    expect(hub.of(1).length).toBeGreaterThanOrEqual(3);
    expect(fleet.stats.commands).toEqual({ succeeded: 2, rejected: 2 });
  });

  it('reboot: RESULT 0, close 1000, reconnect after a pause, then RESULT 1', async () => {
    hub = await FakeHub.start();
    fleet = startDevice(hub);
    await waitFor(() => hub!.connections.length === 1, { what: 'connect' });
    hub.connections[0]!.send(encodeCommand('r-1', 'reboot', null));
    await waitFor(() => hub!.connections.length === 2, { what: 'second connection' });
    expect(hub.closes[0]).toEqual({ conn: 0, code: 1000 });
    await waitFor(() => results(hub!).length === 2, { what: 'final result' });
    expect(results(hub).map((r) => [r.commandId, r.status])).toEqual([['r-1', 0], ['r-1', 1]]);
    expect(hub.received.find((r) => r.msg.type === 4 && r.msg.status === 1)!.conn).toBe(1);
  });

  it('seq wraps at 2^32; ACK 4 resends the same bytes later, ACK 2 drops, a lost connection resends byte for byte', async () => {
    hub = await FakeHub.start();
    const acks: Record<number, number> = { 4294967294: 4, 4294967295: 2 };
    let firstConnectionAcks = true;
    hub.onTelemetry = (ws, seq, r) => {
      if (r.conn === 0 && seq === 1) return; // never acknowledged on the first connection
      if (acks[seq] !== undefined) return void ws.send(encodeAck(seq, acks[seq]!, 'scripted'), () => delete acks[seq]);
      if (firstConnectionAcks || r.conn > 0) ws.send(encodeAck(seq));
    };
    fleet = startDevice(hub, { rate: 10, startSeq: 2 ** 32 - 2 });
    await waitFor(() => hub!.of(1).some((r) => r.msg.type === 1 && r.msg.seq === 2), { what: 'seq 2 on first connection' });
    firstConnectionAcks = false;
    hub.connections[0]!.terminate();
    await waitFor(() => hub!.connections.length === 2 && hub!.of(1).some((r) => r.conn === 1), { what: 'reconnect' });
    await fleet.stop();

    const bySeq = (seq: number) => hub!.of(1).filter((r) => r.msg.type === 1 && r.msg.seq === seq);
    const firstSeen = [...new Set(hub.of(1).map((r) => (r.msg as { seq: number }).seq))];
    expect(firstSeen.slice(0, 4)).toEqual([4294967294, 4294967295, 0, 1]);
    // ACK 4: sent again later, byte for byte.
    expect(bySeq(4294967294).length).toBeGreaterThanOrEqual(2);
    expect(new Set(bySeq(4294967294).map((r) => r.bytes.toString('hex'))).size).toBe(1);
    // ACK 2: dropped, never sent again.
    expect(bySeq(4294967295)).toHaveLength(1);
    // Seq 1 was never acknowledged on connection 0: resent on connection 1 with identical bytes.
    const copies = bySeq(1);
    expect(copies.map((r) => r.conn)).toEqual([0, 1]);
    expect(copies[1]!.bytes.equals(copies[0]!.bytes)).toBe(true);
    expect(fleet.stats.dropped).toBe(1);
    expect(fleet.summary().telemetry.unacknowledged).toBe(0);
  });

  it('close 4000 (replaced): does not reconnect at once', async () => {
    hub = await FakeHub.start();
    fleet = startDevice(hub);
    await waitFor(() => hub!.connections.length === 1, { what: 'connect' });
    hub.connections[0]!.close(4000, 'replaced');
    await sleep(800); // eight times the backoff cap used here
    expect(hub.connections).toHaveLength(1);
    expect(fleet.stats.disconnects).toEqual({ 4000: 1 });
    expect(fleet.devices[0]!.state).toBe('idle');
    expect(fleet.devices[0]!.wakeAt - Date.now()).toBeGreaterThan(50_000);
  });

  it('close 1007 after a malformed frame counts a firmware error and reconnects with backoff', async () => {
    hub = await FakeHub.start();
    fleet = startDevice(hub);
    await waitFor(() => hub!.connections.length === 1, { what: 'connect' });
    hub.connections[0]!.close(1007, 'invalid message');
    await waitFor(() => hub!.connections.length === 2, { what: 'reconnect' });
    expect(fleet.stats.firmwareErrors).toBe(1);
  });
});
