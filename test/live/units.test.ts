import { describe, expect, it } from 'vitest';
import { SessionKeys, sessionCookie } from '../../src/api/session.js';
import { Conflation, LiveConnection, type LiveTransport } from '../../src/live/connection.js';
import { LiveFilter, parseSubscribe } from '../../src/live/filter.js';
import { LatestValues } from '../../src/live/snapshot-state.js';
import { EventRing, LiveHub } from '../../src/live/stream-hub.js';
import { EventBus } from '../../src/events/bus.js';
import type { Reading } from '../../src/protocol/messages.js';
import { emptyBatch, type LiveBatch, type LiveReading } from '../../src/live/types.js';

const reading = (device: string, name: string, t: number, v = t): LiveReading => ({ device, name, t, kind: 'value', v });
const batchOf = (...readings: LiveReading[]): LiveBatch => ({ ...emptyBatch(), readings });

describe('LiveFilter', () => {
  it('matches exact ids and prefixes; empty lists mean all', () => {
    const filter = parseSubscribe('{"type":"subscribe","devices":["boiler-1","sensor-*"],"names":["hum*"]}');
    expect(filter.reading('sensor-9', 'humidity')).toBe(true);
    expect(filter.reading('boiler-1', 'hum')).toBe(true);
    expect(filter.reading('boiler-12', 'hum')).toBe(false);
    expect(filter.reading('sensor-9', 'temp')).toBe(false);
    expect(parseSubscribe('{"type":"subscribe","devices":[]}').all).toBe(true);
  });

  it('refuses what is not a subscribe frame', () => {
    for (const bad of ['[]', '{"type":"hello"}', '{"type":"subscribe","names":[1]}', '{"type":"subscribe","devices":["a*b"]}']) {
      expect(() => parseSubscribe(bad)).toThrow(/invalid live-stream subscription/);
    }
  });
});

describe('LatestValues', () => {
  it('keeps the newest by reading time, whatever the arrival order', () => {
    const latest = new LatestValues(10);
    expect(latest.offer(reading('d', 'x', 2000))).toBe(true);
    expect(latest.offer(reading('d', 'x', 1000))).toBe(false);
    expect(latest.offer(reading('d', 'x', 2000, 7))).toBe(true);
    expect(latest.select(LiveFilter.ALL)).toEqual([reading('d', 'x', 2000, 7)]);
  });

  it('stops remembering new series past its bound but still lets them stream', () => {
    const latest = new LatestValues(1);
    latest.offer(reading('d', 'a', 1));
    expect(latest.offer(reading('d', 'b', 1))).toBe(true);
    expect(latest.size).toBe(1);
    expect(latest.untracked).toBe(1);
  });
});

describe('Conflation', () => {
  it('keeps one reading per series, the newest, and the last view of everything else', () => {
    const c = new Conflation();
    c.add(batchOf(reading('d', 'x', 1), reading('d', 'y', 1), reading('d', 'x', 3)));
    c.add({ ...batchOf(reading('d', 'x', 2)), status: [{ device: 'd', online: true, at: 1, reason: 'connected' }, { device: 'd', online: false, at: 2, reason: 'ping-timeout' }] });
    const out = c.toBatch();
    expect(out.readings).toEqual([reading('d', 'y', 1), reading('d', 'x', 3)]);
    expect(out.status).toEqual([{ device: 'd', online: false, at: 2, reason: 'ping-timeout' }]);
  });

  it('holds at most maxSeries series: known ones keep updating, new ones past the bound are left out', () => {
    const c = new Conflation(2);
    c.add(batchOf(reading('d', 'a', 1), reading('d', 'b', 1), reading('d', 'c', 1)));
    c.add(batchOf(reading('d', 'a', 2), reading('e', 'z', 2)));
    expect(c.toBatch().readings).toEqual([reading('d', 'b', 1), reading('d', 'a', 2)]);
    expect(c.droppedSeries).toBe(2);
  });
});

describe('EventRing', () => {
  it('replays what follows an id it still holds, and says so when it does not', () => {
    const ring = new EventRing(3, 1000);
    for (let seq = 1; seq <= 5; seq++) ring.push(seq, batchOf(reading('d', 'x', seq)));
    expect(ring.since(3, 5)!.map((e) => e.seq)).toEqual([4, 5]);
    expect(ring.since(2, 5)!.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(ring.since(1, 5)).toBeUndefined();
    expect(ring.since(5, 5)).toEqual([]);
    expect(ring.since(6, 5)).toBeUndefined();
  });

  it('drops old ticks once it holds too many events', () => {
    const ring = new EventRing(100, 3);
    for (let seq = 1; seq <= 4; seq++) ring.push(seq, batchOf(reading('d', 'x', seq), reading('d', 'y', seq)));
    expect(ring.since(3, 4)!.map((e) => e.seq)).toEqual([4]);
    expect(ring.since(2, 4)).toBeUndefined();
  });
});

class FakeTransport implements LiveTransport {
  sent: string[] = [];
  bufferedAmount = 0;
  closedWith: [number, string] | undefined;
  send(text: string) { this.sent.push(text); }
  close(code: number, reason: string) { this.closedWith = [code, reason]; }
}

describe('LiveConnection backpressure', () => {
  const limits = { conflateBytes: 100, maxBufferedBytes: 1000, stallMs: 500 };

  it('sends each tick, conflates while the transport is behind, then says conflated', () => {
    const t = new FakeTransport();
    const c = new LiveConnection(t, limits);
    const shared = () => 'shared';
    c.tick(0, 1, batchOf(reading('d', 'x', 1)), shared);
    expect(t.sent).toEqual(['shared']);
    t.bufferedAmount = 500;
    c.tick(100, 2, batchOf(reading('d', 'x', 2)), shared);
    c.tick(200, 3, batchOf(reading('d', 'x', 3), reading('d', 'y', 3)), shared);
    expect(t.sent).toHaveLength(1);
    expect(c.conflating).toBe(true);
    t.bufferedAmount = 0;
    c.tick(300, 3, undefined, shared);
    expect(JSON.parse(t.sent[1]!)).toEqual({ type: 'events', seq: 3, readings: [reading('d', 'x', 3), reading('d', 'y', 3)], conflated: true });
    expect(c.conflating).toBe(false);
  });

  it('closes with 1013 past the byte bound (a draining snapshot aside), or when it stays behind too long', () => {
    const over = new FakeTransport();
    over.bufferedAmount = 1001;
    new LiveConnection(over, limits).tick(0, 1, undefined, () => '');
    expect(over.closedWith?.[0]).toBe(1013);

    const big = new FakeTransport();
    const fresh = new LiveConnection(big, limits);
    fresh.sendSnapshot('x'.repeat(5000), 0);
    big.bufferedAmount = 5500;
    fresh.tick(0, 1, undefined, () => '');
    expect(big.closedWith).toBeUndefined();
    big.bufferedAmount = 50;
    fresh.tick(100, 1, undefined, () => '');
    big.bufferedAmount = 1500;
    fresh.tick(200, 1, undefined, () => '');
    expect(big.closedWith?.[0]).toBe(1013);

    const stalled = new FakeTransport();
    stalled.bufferedAmount = 200;
    const c = new LiveConnection(stalled, limits);
    c.tick(0, 1, batchOf(reading('d', 'x', 1)), () => '');
    c.tick(400, 1, undefined, () => '');
    expect(stalled.closedWith).toBeUndefined();
    c.tick(600, 1, undefined, () => '');
    expect(stalled.closedWith).toEqual([1013, expect.stringMatching(/too slow: behind for 600 ms/)]);
  });
});

describe('LiveConnection conflation bound', () => {
  it('a stalled connection\'s conflated frame holds no more series than the hub tracks', () => {
    const t = new FakeTransport();
    const c = new LiveConnection(t, { conflateBytes: 100, maxBufferedBytes: 1_000_000, stallMs: 60_000, maxSeries: 3 });
    t.bufferedAmount = 500;
    for (let i = 0; i < 100; i++) c.tick(i, i + 1, batchOf(reading('d', `s${i}`, i)), () => '');
    t.bufferedAmount = 0;
    c.tick(200, 100, undefined, () => '');
    expect(JSON.parse(t.sent[0]!).readings.map((r: LiveReading) => r.name)).toEqual(['s0', 's1', 's2']);
  });
});

/** A transport whose client reads nothing: every byte sent stays queued. */
class UnreadTransport extends FakeTransport {
  override send(text: string) { super.send(text); this.bufferedAmount += text.length; }
}

describe('LiveHub SSE resume', () => {
  it('replays the missed events under the snapshot allowance, so a low byte bound does not 1013 a resuming client', () => {
    const hub = new LiveHub({ tickMs: 100, conflateBytes: 100, maxBufferedBytes: 1000, stallMs: 60_000, ringTicks: 100, ringItems: 10_000, maxSeries: 100 });
    const bus = new EventBus();
    void hub.start(bus, { list: async () => ({ devices: [] }), isOnline: () => false });
    try {
      // Someone watches (and reads everything), so the readings go into the ring.
      hub.attach(new FakeTransport(), LiveFilter.ALL);
      for (let k = 1; k <= 40; k++) {
        bus.emit('telemetry.accepted', { deviceId: 'd', readings: [{ name: `series-with-a-long-name-${k}`, kind: 'value', value: k, timeUs: k * 1000 }] });
        hub.tick();
      }
      const t = new UnreadTransport();
      const c = hub.attach(t, LiveFilter.ALL, 1);
      expect(t.sent.map((f) => JSON.parse(f).type)).toEqual(['hello', ...Array(39).fill('events')]);
      expect(t.bufferedAmount).toBeGreaterThan(3000);
      hub.tick();
      expect(t.closedWith).toBeUndefined();
      expect(c.closed).toBe(false);
      // Once drained, the bound is the configured one again.
      t.bufferedAmount = 0;
      hub.tick();
      t.bufferedAmount = 1500;
      hub.tick();
      expect(t.closedWith?.[0]).toBe(1013);
    } finally {
      hub.stop(1001, 'test over');
    }
  });
});

describe('LiveHub with nobody watching', () => {
  it('batches readings while a resume could still be served, then only keeps the latest values, and a resume gets a snapshot', () => {
    const hub = new LiveHub({ tickMs: 100, conflateBytes: 1e6, maxBufferedBytes: 1e7, stallMs: 60_000, ringTicks: 2, ringItems: 1000, maxSeries: 100 });
    const bus = new EventBus();
    void hub.start(bus, { list: async () => ({ devices: [] }), isOnline: () => false });
    const emit = (v: number, extra: Reading[] = []) => bus.emit('telemetry.accepted', { deviceId: 'd', readings: [{ name: 'x', kind: 'value', value: v, timeUs: v * 1000 }, ...extra] });
    const frames = (t: FakeTransport) => t.sent.map((f) => JSON.parse(f) as { type: string; seq: number; readings?: LiveReading[]; latest?: LiveReading[] });
    try {
      const first = hub.attach(new FakeTransport(), LiveFilter.ALL);
      emit(1);
      hub.tick();
      hub.detach(first);
      // Within ringTicks (2) ticks of the last connection going, the readings still go into the ring.
      emit(2);
      hub.tick();
      emit(3);
      hub.tick();
      const resumed = new FakeTransport();
      hub.detach(hub.attach(resumed, LiveFilter.ALL, 1));
      expect(frames(resumed).map((f) => [f.type, f.readings?.map((r) => r.v)])).toEqual([['hello', undefined], ['events', [2]], ['events', [3]]]);
      const lastSeen = frames(resumed)[2]!.seq;
      emit(4);
      hub.tick();
      emit(5);
      hub.tick();
      // Past that, readings are left out of the batches: nothing to tick, but the latest values are kept.
      emit(6, [{ name: 'blob', kind: 'data', value: new Uint8Array([1, 2, 3]), timeUs: 6000 }]);
      hub.tick();
      const late = new FakeTransport();
      hub.attach(late, LiveFilter.ALL, lastSeen);
      const [hello, snapshot, ...rest] = frames(late);
      expect(hello!.type).toBe('hello');
      expect(snapshot!.type).toBe('snapshot');
      expect(snapshot!.latest).toEqual([
        { device: 'd', name: 'x', t: 6, kind: 'value', v: 6 },
        { device: 'd', name: 'blob', t: 6, kind: 'data', v: Buffer.from([1, 2, 3]).toString('base64') },
      ]);
      expect(rest).toEqual([]);
      // Watched again: readings stream.
      emit(7);
      hub.tick();
      expect(frames(late).at(-1)).toMatchObject({ type: 'events', readings: [{ name: 'x', v: 7 }] });
    } finally {
      hub.stop(1001, 'test over');
    }
  });
});

describe('LiveHub subscribe', () => {
  it('queues one snapshot, not one per subscribe, for a connection that is behind', () => {
    const hub = new LiveHub({ tickMs: 100, conflateBytes: 100, maxBufferedBytes: 10_000, stallMs: 60_000, ringTicks: 10, ringItems: 100, maxSeries: 100 });
    const t = new FakeTransport();
    const c = hub.attach(t, LiveFilter.ALL);
    expect(t.sent.map((f) => JSON.parse(f).type)).toEqual(['hello', 'snapshot']);
    t.bufferedAmount = 5000;
    for (let i = 0; i < 50; i++) hub.subscribe(c, LiveFilter.ALL);
    hub.tick();
    expect(t.sent).toHaveLength(2);
    t.bufferedAmount = 0;
    hub.tick();
    hub.tick();
    expect(t.sent.map((f) => JSON.parse(f).type)).toEqual(['hello', 'snapshot', 'snapshot']);
  });
});

describe('SessionKeys', () => {
  it('accepts its own unexpired, unrevoked sessions only', async () => {
    let now = 1_000_000;
    const keys = new SessionKeys('operator-token-0123456789', { now: () => now });
    const { value } = keys.issue({ ttlMs: 60_000 });
    expect(value).not.toContain('operator-token');
    expect(await keys.verify(value)).toBe(true);
    expect(await keys.keyIdOf(value)).toBe('bootstrap');
    expect(await keys.keyIdOf(keys.issue({ keyId: '0123456789abcdef' }).value)).toBe('0123456789abcdef');
    // The key id is signed: a session cannot be moved onto another key.
    expect(await keys.verify(value.replace('.bootstrap.', '.0123456789abcdef.'))).toBe(false);
    expect(await keys.verify(value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A'))).toBe(false);
    expect(await new SessionKeys('another-token-0123456789', { now: () => now }).verify(value)).toBe(false);
    now += 60_001;
    expect(await keys.verify(value)).toBe(false);
    now -= 60_001;
    await keys.revoke(value);
    expect(await keys.verify(value)).toBe(false);
  });

  it('marks the cookie Secure when the hub serves TLS', () => {
    expect(sessionCookie('v', 60, true)).toBe('pulsewire_session=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=60; Secure');
  });
});
