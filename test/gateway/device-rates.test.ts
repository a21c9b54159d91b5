import { afterEach, describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/gateway/token-bucket.js';
import { encodeReported, encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import type { AckMessage } from '../../src/protocol/messages.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

describe('TokenBucket', () => {
  it('passes a burst up to its capacity, then tells how long until the next token', () => {
    let now = 0;
    const bucket = new TokenBucket({ ratePerS: 10, capacity: 3, now: () => now });
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0]);
    expect(bucket.take()).toBe(100);
    now += 100;
    expect(bucket.take()).toBe(0);
    // Never more than the capacity saved up, however long it waited.
    now += 60_000;
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0, 100]);
  });

  it('takes an amount above its capacity from a full bucket and leaves it in debt', () => {
    let now = 0;
    const bucket = new TokenBucket({ ratePerS: 10, capacity: 5, now: () => now });
    expect(bucket.take(8)).toBe(0);
    // Three in debt, then five needed for the next large amount: 800 ms.
    expect(bucket.take(8)).toBe(800);
    now += 800;
    expect(bucket.take(8)).toBe(0);
  });
});

describe('per-device rates on the WebSocket', () => {
  let hub: TestHub | undefined;
  afterEach(async () => { await hub?.close(); hub = undefined; });

  const record = (name: string, v: number) => senmlRecord({ n: name, v });

  /** ACKs of `count` TELEMETRY messages sent at once, by seq, and the seconds from the first send to the last ACK. */
  async function burst(device: TestDevice, count: number, records: (seq: number) => unknown[]): Promise<{ acks: Map<number, AckMessage>; seconds: number }> {
    const started = Date.now();
    for (let seq = 0; seq < count; seq++) device.send(encodeTelemetry(seq, records(seq)));
    const acks = new Map<number, AckMessage>();
    while (acks.size < count) {
      const message = await device.next();
      if (message.type === 2) acks.set(message.seq, message);
    }
    return { acks, seconds: (Date.now() - started) / 1000 };
  }

  it('answers TELEMETRY over PULSEWIRE_DEVICE_MESSAGE_RATE with ACK 4 naming it; the same bytes resent later are stored once', async () => {
    hub = await startHub({ PULSEWIRE_DEVICE_MESSAGE_RATE: '2' });
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'chatty-1' });
    const { acks, seconds } = await burst(device, 20, (seq) => [record('m', seq)]);
    const stored = [...acks.values()].filter((a) => (a.code ?? 0) === 0);
    const limited = [...acks.values()].filter((a) => a.code === 4);
    // A burst of 2 x rate, plus what the rate refilled while the burst was going on.
    expect(stored.length).toBeGreaterThanOrEqual(4);
    expect(stored.length).toBeLessThanOrEqual(4 + Math.ceil(seconds * 2));
    expect(stored.length + limited.length).toBe(20);
    expect(limited[0]!.reason).toBe('rate limited, resend later: more than 2 messages per second (PULSEWIRE_DEVICE_MESSAGE_RATE)');

    // Resent byte for byte, as firmware keeps it: accepted once tokens are back (ACK 4 means "resend later").
    const again = limited[0]!.seq;
    let answer: AckMessage | undefined;
    for (let attempt = 0; attempt < 30 && (answer === undefined || answer.code === 4); attempt++) {
      await new Promise((r) => setTimeout(r, 500));
      device.send(encodeTelemetry(again, [record('m', again)]));
      const next = await device.next();
      if (next.type === 2) answer = next;
    }
    expect(answer).toEqual({ type: 2, seq: again });
    await device.close();
    const rows = await hub.db.query(`SELECT "value" FROM "telemetry" WHERE "device" = 'chatty-1'`);
    expect(rows).toHaveLength(stored.length + 1);
    const metrics = (await hub.app.metricsText()).text;
    expect(metrics).toMatch(new RegExp(`pulsewire_device_limits_hit_total\\{limit="message-rate"\\} (\\d+)`));
  });

  it('answers TELEMETRY over PULSEWIRE_DEVICE_READING_RATE with ACK 4 naming it', async () => {
    // Capacity max(2 x 10, 8 records) = 20 readings: two packs of 8 pass, the third finds 4 left.
    hub = await startHub({ PULSEWIRE_DEVICE_READING_RATE: '10', PULSEWIRE_MAX_RECORDS: '8' });
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'wordy-1' });
    const { acks, seconds } = await burst(device, 6, (seq) => Array.from({ length: 8 }, (_, i) => record(`r${i}`, seq)));
    const stored = [...acks.values()].filter((a) => (a.code ?? 0) === 0).length;
    expect(stored).toBeGreaterThanOrEqual(2);
    expect(stored).toBeLessThanOrEqual(2 + Math.ceil((seconds * 10) / 8));
    const limited = [...acks.values()].find((a) => a.code === 4);
    expect(limited?.reason).toBe('rate limited, resend later: more than 10 readings per second (PULSEWIRE_DEVICE_READING_RATE)');
    await device.close();
    expect((await hub.app.metricsText()).text).toMatch(/pulsewire_device_limits_hit_total\{limit="reading-rate"\} [1-9]/);
  });

  it('closes a device that floods REPORTED past the message rate with 1008 and the reason; the reports before it count', async () => {
    hub = await startHub({ PULSEWIRE_DEVICE_MESSAGE_RATE: '2' });
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'reporter-1' });
    for (let i = 0; i < 50; i++) device.send(encodeReported({ [`k${i}`]: i }));
    const closed = await device.closed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toBe('REPORTED: more than 2 messages per second (PULSEWIRE_DEVICE_MESSAGE_RATE)');
    await expect.poll(async () => Object.keys((await hub!.api('GET', '/v1/devices/reporter-1/state')).body.reported ?? {}).length).toBeGreaterThanOrEqual(4);
    const state = await hub.api('GET', '/v1/devices/reporter-1/state');
    expect(state.body.reported.k0).toBe(0);
    expect(state.body.reported.k49).toBeUndefined();
  });

  it('leaves a device within the default rates alone: 300 messages at once are all stored', async () => {
    hub = await startHub();
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'calm-1' });
    const { acks } = await burst(device, 300, (seq) => [record('calm', seq)]);
    expect([...acks.values()].every((a) => (a.code ?? 0) === 0)).toBe(true);
    await device.close();
  });
});
