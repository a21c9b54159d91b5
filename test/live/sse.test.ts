import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { OPERATOR_TOKEN, restartableHub, startHub, type TestHub } from '../support/hub.js';
import { SseClient, telemetry, type Frame, type Refusal } from './live-client.js';

const RING_TICKS = 5;

describe('live stream over Server-Sent Events', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({}, { live: { ringTicks: RING_TICKS } });
  });
  afterAll(async () => { await hub?.close(); });

  const open = async (query: string, headers: Record<string, string> = {}) => {
    const client = await SseClient.open(hub.baseUrl, query, { authorization: `Bearer ${OPERATOR_TOKEN}`, ...headers });
    if (!(client instanceof SseClient)) throw new Error(`refused: ${JSON.stringify(client)}`);
    return client;
  };
  const readings = (f: Frame) => f.type === 'events' && f.readings !== undefined;

  it('streams hello, a snapshot and events, each state frame with <boot>.<seq> as id, filtered by the query', async () => {
    const sse = await open('?devices=sse-a*&names=temp');
    expect(sse.response.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(await sse.next()).toEqual({ type: 'hello', version: 1, tickMs: 100 });
    const snapshot = await sse.next();
    expect(snapshot).toMatchObject({ type: 'snapshot', id: `${hub.app.live.boot}.${snapshot.seq}` });
    const a = await TestDevice.connect(hub.deviceUrl, { id: 'sse-a1' });
    const b = await TestDevice.connect(hub.deviceUrl, { id: 'sse-b1' });
    b.send(telemetry(1, { temp: 1 }));
    a.send(telemetry(1, { temp: 2, hum: 3 }));
    await Promise.all([a.next(), b.next()]);
    const frame = await sse.next(readings);
    expect(frame.id).toBe(`${hub.app.live.boot}.${frame.seq}`);
    expect(frame.readings).toEqual([expect.objectContaining({ device: 'sse-a1', name: 'temp', v: 2 })]);
    await Promise.all([a.close(), b.close()]);
    sse.close();
  });

  it('resumes after Last-Event-ID with only the missed events, no snapshot', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'sse-resume' });
    const first = await open('?devices=sse-resume');
    // Stays connected: once it has the second reading, the hub has sent that tick, and the ring holds it.
    const witness = await open('?devices=sse-resume');
    device.send(telemetry(1, { x: 1 }));
    await device.next();
    const seen = await first.next(readings);
    first.close();
    device.send(telemetry(2, { x: 2 }));
    await device.next();
    await witness.next((f) => readings(f) && f.readings.some((r: Frame) => r.v === 2));
    witness.close();

    const again = await open('?devices=sse-resume', { 'last-event-id': seen.id! });
    expect(await again.next()).toMatchObject({ type: 'hello' });
    const missed = await again.next();
    expect(missed.type).toBe('events');
    expect(missed.seq).toBeGreaterThan(seen.seq!);
    expect(missed.id).toBe(`${hub.app.live.boot}.${missed.seq}`);
    expect(missed.readings).toEqual([expect.objectContaining({ device: 'sse-resume', name: 'x', v: 2 })]);
    expect(again.seen.some((f) => f.type === 'snapshot')).toBe(false);
    again.close();
    await device.close();
  });

  it('sends a fresh snapshot when the Last-Event-ID is older than the ring or unknown', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'sse-old' });
    const watcher = await open('?devices=sse-old');
    device.send(telemetry(1, { x: 1 }));
    await device.next();
    const old = await watcher.next(readings);
    // More ticks with events than the ring keeps.
    for (let seq = 2; seq < 2 + RING_TICKS + 3; seq++) {
      device.send(telemetry(seq, { x: seq }));
      await device.next();
      await watcher.next(readings);
    }
    watcher.close();
    // Too old for the ring; an unknown form; this run's seq without its boot; another boot's id.
    for (const id of [old.id!, '999999999', String(old.seq), `${hub.app.live.boot + 1}.${old.seq}`]) {
      const again = await open('?devices=sse-old', { 'last-event-id': id });
      await again.next();
      const snapshot = await again.next();
      expect(snapshot.type).toBe('snapshot');
      expect(snapshot.latest).toEqual([expect.objectContaining({ device: 'sse-old', name: 'x', v: RING_TICKS + 4 })]);
      again.close();
    }
    await device.close();
  });

  it('refuses a bad filter with 400 before streaming', async () => {
    const refused = (await SseClient.open(hub.baseUrl, '?devices=a%20b', { authorization: `Bearer ${OPERATOR_TOKEN}` })) as Refusal;
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body).error.code).toBe('PW_ERR_LIVE_SUBSCRIBE');
  });
});

describe('SSE resume across a hub restart', () => {
  let hubs: Awaited<ReturnType<typeof restartableHub>> | undefined;
  afterAll(async () => { await hubs?.close(); });

  it('answers an id from before the restart with a fresh snapshot, even once the new hub\'s seq has passed it', async () => {
    hubs = await restartableHub('sse-boot');
    const first = await hubs.start();
    const before = await SseClient.open(first.baseUrl, '?devices=boot-*', { authorization: `Bearer ${OPERATOR_TOKEN}` }) as SseClient;
    const device = await TestDevice.connect(first.deviceUrl, { id: 'boot-1' });
    device.send(telemetry(1, { x: 1 }));
    await device.next();
    const seen = await before.next((f) => f.type === 'events' && f.readings !== undefined);
    before.close();
    await device.close();
    await first.close();

    const second = await hubs.start();
    expect(second.app.live.boot).not.toBe(first.app.live.boot);
    const again = await TestDevice.connect(second.deviceUrl, { id: 'boot-1' });
    // Several ticks with events, so the new hub's seq is past the old id's: a bare seq would "resume" and skip these.
    const watcher = await SseClient.open(second.baseUrl, '?devices=boot-*', { authorization: `Bearer ${OPERATOR_TOKEN}` }) as SseClient;
    let newest = 0;
    for (let k = 1; k <= 3 || second.app.live.stats.seq <= seen.seq! + 1; k++) {
      newest = 10 + k;
      // Message seqs go on from the first hub's (its duplicate window survives the restart).
      again.send(telemetry(1 + k, { x: newest }));
      expect(await again.next()).toEqual({ type: 2, seq: 1 + k });
      await watcher.next((f) => f.type === 'events' && f.readings?.some((r: Frame) => r.v === newest));
    }
    watcher.close();

    const resumed = await SseClient.open(second.baseUrl, '?devices=boot-*', { authorization: `Bearer ${OPERATOR_TOKEN}`, 'last-event-id': seen.id! }) as SseClient;
    expect(await resumed.next()).toMatchObject({ type: 'hello' });
    const snapshot = await resumed.next();
    expect(snapshot.type).toBe('snapshot');
    expect(snapshot.id).toBe(`${second.app.live.boot}.${snapshot.seq}`);
    expect(snapshot.latest).toEqual([expect.objectContaining({ device: 'boot-1', name: 'x', v: newest })]);
    resumed.close();
    await again.close();
  });
});
