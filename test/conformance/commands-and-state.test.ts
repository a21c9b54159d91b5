/**
 * Conformance of the hub's commands and state (protocol v1 section 3,
 * "COMMAND and RESULT", "REPORTED and DESIRED"; docs/protocol.md "Commands
 * and state"), seen from the spec client over the WebSocket: what a device
 * receives, byte for byte, and what the operator API then shows. The client
 * decides what is right from the documents alone; nothing here imports the
 * hub's code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from '../support/hub.js';
import { enrolled, newId, rec, register, settlesTo } from './fixtures.js';
import { encodeDeterministic, fromHex, hex } from './mini-cbor.js';
import {
  ACK,
  COMMAND,
  connectDevice,
  DESIRED,
  EVENT_CEILING_MS,
  FAILED,
  RECEIVED,
  REJECTED,
  reported,
  result,
  SUCCEEDED,
  type SpecDevice,
} from './spec-client.js';

const V_REPORTED = '8205a262667765312e322e3068696e74657276616c181e';
/** docs/protocol.md, Ordering and delivery: `c`, 11 base-36 digits of the clock, 6 hex digits. */
const COMMAND_ID = /^c[0-9a-z]{11}[0-9a-f]{6}$/;
/** Seconds an operator read waits for a final status (`?wait=`): a ceiling, not a speed claim. */
const WAIT_S = EVENT_CEILING_MS / 1000;

/** Default limits, real clock: commands and state do not depend on telemetry times. */
let hub: TestHub;
beforeAll(async () => {
  hub = await startHub();
});
afterAll(async () => {
  await hub?.close();
});

async function createCommand(id: string, body: Record<string, unknown>): Promise<string> {
  const created = await hub.api('POST', `/v1/devices/${id}/commands`, body);
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  expect(created.body.id).toMatch(COMMAND_ID);
  expect(created.body.name).toBe(body.name);
  return created.body.id as string;
}

const getCommand = async (id: string, cid: string) => (await hub.api('GET', `/v1/devices/${id}/commands/${cid}`)).body;

/** The command once it is final (`?wait`), which must be within the ceiling. */
async function finalCommand(id: string, cid: string): Promise<any> {
  const res = await hub.api('GET', `/v1/devices/${id}/commands/${cid}?wait=${WAIT_S}`);
  expect(res.status, `command ${cid} not final: ${JSON.stringify(res.body)}`).toBe(200);
  return res.body;
}

/** Waits until the command shows `status` (a step the hub takes just after the frame the test saw). */
async function reaches(id: string, cid: string, status: string): Promise<any> {
  await settlesTo(async () => (await getCommand(id, cid)).status, status);
  return getCommand(id, cid);
}

const state = async (id: string) => (await hub.api('GET', `/v1/devices/${id}/state`)).body;

/** Proves the connection is open and the hub has read every earlier frame: a TELEMETRY and its ACK 0. */
async function stillOpen(d: SpecDevice, seq: number): Promise<void> {
  d.sendTelemetry(seq, [rec({ n: 'alive', v: seq })]);
  expect((await d.ack(seq)).code).toBe(0);
  expect(d.isOpen).toBe(true);
}

describe('COMMAND and RESULT over the WebSocket', () => {
  it('sends a command to a connected device as [3, commandId, name, args] in the documented encoding; RESULT 0 then 1 ends it succeeded', async () => {
    const id = newId('cmd');
    const d = await enrolled(hub, id);
    const args = { seconds: 30, ratio: 0.5, label: 'x', list: [1, -2, 70000], on: true, none: null };
    const cid = await createCommand(id, { name: 'set_interval', args });

    const cmd = await d.command();
    expect(cmd.commandId).toBe(cid);
    // Integers shortest, 0.5 as float64, keys sorted by their encoded bytes, definite lengths, no tags.
    expect(hex(cmd.bytes)).toBe(hex(encodeDeterministic([COMMAND, cid, 'set_interval', args])));
    const sent = await reaches(id, cid, 'sent');
    expect(typeof sent.sentAt).toBe('string');

    d.send(result(cid, RECEIVED));
    await reaches(id, cid, 'received');
    d.send(result(cid, SUCCEEDED, new Map([['ok', true]])));
    expect(await finalCommand(id, cid)).toMatchObject({ id: cid, status: 'succeeded', result: { ok: true } });
    await d.close();
  });

  it('sends args null when a command has none; a final RESULT without payload keeps what RESULT 0 said', async () => {
    const id = newId('noargs');
    const d = await enrolled(hub, id);
    const cid = await createCommand(id, { name: 'reboot' });
    const cmd = await d.command();
    expect(hex(cmd.bytes)).toBe(hex(encodeDeterministic([COMMAND, cid, 'reboot', null])));
    d.send(result(cid, RECEIVED, new Map([['progress', 50]])));
    await reaches(id, cid, 'received');
    d.send(result(cid, SUCCEEDED));
    expect(await finalCommand(id, cid)).toMatchObject({ status: 'succeeded', result: { progress: 50 } });
    await d.close();
  });

  it('RESULT 2 and 3 end a command failed and rejected; a second final RESULT and an unknown command id are ignored, the connection stays', async () => {
    const id = newId('fail');
    const d = await enrolled(hub, id);
    const failing = await createCommand(id, { name: 'flash', args: { url: 'x' } });
    const refused = await createCommand(id, { name: 'self_destruct' });
    // Queue order: the first created comes first.
    expect((await d.command()).commandId).toBe(failing);
    expect((await d.command()).commandId).toBe(refused);

    d.send(result(failing, FAILED, 'disk full'));
    d.send(result(refused, REJECTED, new Map([['error', 'unknown command']])));
    expect(await finalCommand(id, failing)).toMatchObject({ status: 'failed', result: 'disk full' });
    expect(await finalCommand(id, refused)).toMatchObject({ status: 'rejected', result: { error: 'unknown command' } });

    d.send(result(failing, SUCCEEDED, 'changed my mind'));
    d.send(result('c-no-such-command', SUCCEEDED));
    await stillOpen(d, 1);
    expect(await getCommand(id, failing)).toMatchObject({ status: 'failed', result: 'disk full' });
    await d.close();
  });

  it('closes with 1007 on a RESULT status above 3', async () => {
    const d = await enrolled(hub);
    d.send(result('c-01', 4));
    expect((await d.waitClosed()).code).toBe(1007);
  });

  it('delivers what waited for an offline device on connect: DESIRED first, then the queued commands in order; expired and cancelled ones never', async () => {
    const id = newId('offline');
    const secret = await register(hub, id);
    const patch = await hub.api('PATCH', `/v1/devices/${id}/desired`, { interval: 30 });
    expect(patch.status).toBe(200);
    const version = patch.body.version as number;
    expect(version).toBeGreaterThan(0);
    const expiring = await createCommand(id, { name: 'expire-me', ttlMs: 200 });
    const cancelled = await createCommand(id, { name: 'cancel-me' });
    const first = await createCommand(id, { name: 'first' });
    const second = await createCommand(id, { name: 'second', args: [1, 2] });
    expect((await hub.api('DELETE', `/v1/devices/${id}/commands/${cancelled}`)).status).toBe(200);
    expect(await getCommand(id, cancelled)).toMatchObject({ status: 'cancelled', result: 'cancelled by operator' });
    expect(await finalCommand(id, expiring)).toMatchObject({ status: 'expired', result: 'not sent within ttlMs 200' });

    const d = await connectDevice(hub.deviceUrl, id, secret);
    const desired = await d.message();
    expect(desired).toEqual({ type: DESIRED, version, state: new Map([['interval', 30]]) });
    const c1 = await d.message();
    const c2 = await d.message();
    expect([c1, c2]).toEqual([
      { type: COMMAND, commandId: first, name: 'first', args: null },
      { type: COMMAND, commandId: second, name: 'second', args: [1, 2] },
    ]);
    // Nothing else was waiting: the next frame is the ACK of this TELEMETRY.
    d.sendTelemetry(9, [rec({ n: 'x', v: 1 })]);
    expect(await d.message()).toEqual({ type: ACK, seq: 9, code: 0 });
    d.send(result(first, SUCCEEDED));
    d.send(result(second, SUCCEEDED));
    expect((await finalCommand(id, second)).status).toBe('succeeded');
    await d.close();
  });

  it('writes a command once: not again on the next connection, where its RESULT still counts', async () => {
    const id = newId('once');
    const d = await enrolled(hub, id);
    const cid = await createCommand(id, { name: 'reboot' });
    expect((await d.command()).commandId).toBe(cid);
    await reaches(id, cid, 'sent');
    d.terminate(); // gone without answering

    const again = await enrolled(hub, id);
    const later = await createCommand(id, { name: 'after-reconnect' });
    // Queue order: had the first been written again, it would come before this one.
    expect((await again.command()).commandId).toBe(later);
    again.send(result(cid, SUCCEEDED, new Map([['rebooted', true]])));
    expect(await finalCommand(id, cid)).toMatchObject({ status: 'succeeded', result: { rebooted: true } });
    again.send(result(later, SUCCEEDED));
    expect((await finalCommand(id, later)).status).toBe('succeeded');
    await again.close();
  });

  it('times a command out timeoutMs after it was sent; a RESULT after that is ignored', async () => {
    const id = newId('timeout');
    const d = await enrolled(hub, id);
    const cid = await createCommand(id, { name: 'slow', timeoutMs: 100 });
    expect((await d.command()).commandId).toBe(cid);
    const ended = await finalCommand(id, cid);
    expect(ended).toMatchObject({ status: 'timed-out', result: 'no final RESULT within 100 ms' });
    expect(Date.parse(ended.completedAt) - Date.parse(ended.sentAt)).toBeGreaterThanOrEqual(100);
    d.send(result(cid, SUCCEEDED));
    await stillOpen(d, 1);
    expect((await getCommand(id, cid)).status).toBe('timed-out');
    await d.close();
  });
});

describe('REPORTED and DESIRED over the WebSocket', () => {
  it('merges REPORTED as a JSON Merge Patch: null and undefined remove, maps merge, integer keys become text', async () => {
    const id = newId('rep');
    const d = await enrolled(hub, id);
    d.send(fromHex(V_REPORTED)); // {fw: "1.2.0", interval: 30}
    d.send(reported(new Map<unknown, unknown>([['interval', null], ['net', new Map<string, unknown>([['rssi', -70], ['ssid', 'a']])], [7, true], ['tmp', 1]])));
    d.send(reported(new Map<unknown, unknown>([['net', new Map([['ssid', null]])], ['tmp', undefined]])));
    await settlesTo(async () => (await state(id)).reported, { fw: '1.2.0', net: { rssi: -70 }, '7': true });
    const s = await state(id);
    expect(s.deviceId).toBe(id);
    expect(typeof s.reportedAt).toBe('string');
    await stillOpen(d, 1); // the hub does not answer REPORTED, and does not close on it
    await d.close();
  });

  it('sends the whole desired document on every change, with a version one higher per PATCH, and again after a reconnect', async () => {
    const id = newId('des');
    const d = await enrolled(hub, id);
    const p1 = await hub.api('PATCH', `/v1/devices/${id}/desired`, { interval: 30, mode: { eco: true, level: 2 }, ratio: 0.25 });
    expect(p1.status).toBe(200);
    const m1 = await d.desired();
    expect(m1.version).toBe(p1.body.version);
    expect(hex(m1.bytes)).toBe(hex(encodeDeterministic([DESIRED, p1.body.version, { interval: 30, mode: { eco: true, level: 2 }, ratio: 0.25 }])));

    const p2 = await hub.api('PATCH', `/v1/devices/${id}/desired`, { mode: { eco: null, boost: 1 }, ratio: null });
    expect(p2.body.version).toBe(p1.body.version + 1);
    const whole = { interval: 30, mode: { level: 2, boost: 1 } };
    expect(p2.body.desired).toEqual(whole);
    const m2 = await d.desired();
    expect(hex(m2.bytes)).toBe(hex(encodeDeterministic([DESIRED, p2.body.version, whole])));

    // A PATCH that changes nothing still counts, and is sent again.
    const p3 = await hub.api('PATCH', `/v1/devices/${id}/desired`, {});
    expect(p3.body.version).toBe(p2.body.version + 1);
    expect((await d.desired()).version).toBe(p3.body.version);
    await d.close();

    const again = await enrolled(hub, id);
    const first = await again.message();
    expect(first).toEqual({ type: DESIRED, version: p3.body.version, state: new Map<unknown, unknown>([['interval', 30], ['mode', new Map([['boost', 1], ['level', 2]])]]) });
    await again.close();
  });

  it('shows the delta: what desired asks that reported does not show yet, recursing into objects; {} once in sync', async () => {
    const id = newId('delta');
    const d = await enrolled(hub, id);
    await hub.api('PATCH', `/v1/devices/${id}/desired`, { interval: 30, mode: { eco: true, level: 2 }, list: [1, 2] });
    await d.desired();
    d.send(reported(new Map<unknown, unknown>([['interval', 30], ['mode', new Map<unknown, unknown>([['eco', true], ['level', 1]])], ['list', [1]], ['fw', '1.0']])));
    await settlesTo(async () => (await state(id)).delta, { mode: { level: 2 }, list: [1, 2] });
    d.send(reported(new Map<unknown, unknown>([['mode', new Map([['level', 2]])], ['list', [1, 2]]])));
    await settlesTo(async () => (await state(id)).delta, {});
    expect((await state(id)).reported).toEqual({ interval: 30, mode: { eco: true, level: 2 }, list: [1, 2], fw: '1.0' });
    await d.close();
  });
});
