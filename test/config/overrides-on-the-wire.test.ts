/**
 * Configuration overrides seen where they act, on a real hub over real
 * sockets: PULSEWIRE_MAX_FUTURE_S, MAX_PAST_S and MAX_RECORDS in the ACKs a
 * device gets (and what reaches InfluxDB), PULSEWIRE_COMMAND_TIMEOUT_MS in
 * a command the device never answers. A hub with the defaults, on the same
 * pinned clock, is the control: it accepts what the overridden one refuses,
 * so the variable is what made the difference.
 * (PULSEWIRE_COMMAND_RETENTION_MS: test/commands/retention.test.ts;
 * PULSEWIRE_PERMESSAGE_DEFLATE: test/gateway/permessage-deflate.test.ts.)
 *
 * The hubs' receipt clock is pinned to NOW_S, so the window's edges are
 * exact and the readings' times are absolute.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeResult, encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { nextCommand } from '../support/commands.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

const NOW_S = Math.floor(Date.now() / 1000);
const pinnedClock = () => NOW_S * 1_000_000;

const OVERRIDES = {
  PULSEWIRE_MAX_FUTURE_S: '60',
  PULSEWIRE_MAX_PAST_S: '3600',
  PULSEWIRE_MAX_RECORDS: '3',
  PULSEWIRE_COMMAND_TIMEOUT_MS: '500',
};

/** seq → the pack it sends: the edges of the overridden window and record count, and one step past each. */
const PACKS: [seq: number, records: Map<number, unknown>[]][] = [
  [1, [senmlRecord({ n: 'edge', v: 1, t: NOW_S + 60 })]],
  [2, [senmlRecord({ n: 'edge', v: 2, t: NOW_S + 61 })]],
  [3, [senmlRecord({ n: 'edge', v: 3, t: NOW_S - 3600 })]],
  [4, [senmlRecord({ n: 'edge', v: 4, t: NOW_S - 3601 })]],
  [5, [1, 2, 3].map((i) => senmlRecord({ n: `r${i}`, v: 50 + i, t: NOW_S - 10 }))],
  [6, [1, 2, 3, 4].map((i) => senmlRecord({ n: `r${i}`, v: 60 + i, t: NOW_S - 20 }))],
];

/** The ACKs of PACKS by seq (a refusal is answered at once, an acceptance after the spool's commit: not in order). */
async function acksFor(hub: TestHub, deviceId: string): Promise<{ seq: number }[]> {
  const device = await TestDevice.connect(hub.deviceUrl, { id: deviceId });
  for (const [seq, records] of PACKS) device.send(encodeTelemetry(seq, records));
  const acks: { seq: number }[] = [];
  for (let i = 0; i < PACKS.length; i++) acks.push((await device.next()) as { seq: number });
  await device.close();
  return acks.sort((a, b) => a.seq - b.seq);
}

describe('configuration overrides on the wire', () => {
  let hub: TestHub;
  let control: TestHub;
  beforeAll(async () => {
    [hub, control] = await Promise.all([startHub(OVERRIDES, { nowUs: pinnedClock }), startHub({}, { nowUs: pinnedClock })]);
  });
  afterAll(async () => {
    await hub?.close();
    await control?.close();
  });

  it('MAX_FUTURE_S, MAX_PAST_S and MAX_RECORDS: the edge is accepted, one past it refused with ACK 3 or ACK 2', async () => {
    expect(await acksFor(hub, 'limits-1')).toEqual([
      { type: 2, seq: 1 },
      { type: 2, seq: 2, code: 3, reason: expect.stringMatching(/^record 0: time \d+ s is outside the accepted window$/) },
      { type: 2, seq: 3 },
      { type: 2, seq: 4, code: 3, reason: expect.stringMatching(/^record 0: time \d+ s is outside the accepted window$/) },
      { type: 2, seq: 5 },
      { type: 2, seq: 6, code: 2, reason: 'pack has 4 records, at most 3 allowed' },
    ]);
    const rows = await hub.db.query(`SELECT "value", "name" FROM "telemetry" WHERE "device" = 'limits-1' ORDER BY time`);
    expect(rows.map((r) => [r.time, r['name'], r['value']])).toEqual([
      [(NOW_S - 3600) * 1e6, 'edge', 3],
      [(NOW_S - 10) * 1e6, 'r1', 51], [(NOW_S - 10) * 1e6, 'r2', 52], [(NOW_S - 10) * 1e6, 'r3', 53],
      [(NOW_S + 60) * 1e6, 'edge', 1],
    ]);
  });

  it('the same messages are all accepted with the defaults (300 s ahead, 30 days back, 1024 records)', async () => {
    expect(await acksFor(control, 'limits-2')).toEqual(PACKS.map(([seq]) => ({ type: 2, seq })));
  });

  it('COMMAND_TIMEOUT_MS: a command created without timeoutMs gets 500 ms, goes out, and times out unanswered', async () => {
    for (const target of [hub, control]) expect((await target.api('PUT', '/v1/devices/timeout-1')).status).toBe(201);
    const secret = (await hub.api('PUT', '/v1/devices/timeout-1')).body.secret as string;
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'timeout-1', secret });
    try {
      const created = await hub.api('POST', '/v1/devices/timeout-1/commands', { name: 'blink' });
      expect(created.body).toMatchObject({ status: 'queued', timeoutMs: 500 });
      expect(await nextCommand(device)).toEqual({ type: 3, commandId: created.body.id, name: 'blink', args: null });
      const done = await hub.api('GET', `/v1/devices/timeout-1/commands/${created.body.id}?wait=60`);
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ status: 'timed-out', result: 'no final RESULT within 500 ms', timeoutMs: 500 });
      expect(Date.parse(done.body.completedAt) - Date.parse(done.body.sentAt)).toBeGreaterThanOrEqual(500);
      // A late answer changes nothing. The connection's messages are handled in order, so once the
      // TELEMETRY behind it is ACKed the RESULT has been seen.
      device.send(encodeResult(created.body.id, 1));
      device.send(encodeTelemetry(7, [senmlRecord({ n: 'after', v: 1, t: NOW_S })]));
      expect(await device.next()).toEqual({ type: 2, seq: 7 });
      const explicit = await hub.api('POST', '/v1/devices/timeout-1/commands', { name: 'slow', timeoutMs: 60_000 });
      expect(explicit.body.timeoutMs).toBe(60_000);
      expect((await hub.api('GET', `/v1/devices/timeout-1/commands/${created.body.id}`)).body.status).toBe('timed-out');
    } finally {
      await device.close();
    }
    // The control hub's default is the documented 30 s.
    expect((await control.api('POST', '/v1/devices/timeout-1/commands', { name: 'blink' })).body.timeoutMs).toBe(30_000);
  });
});
