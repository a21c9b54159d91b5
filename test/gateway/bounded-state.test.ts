/**
 * Nothing the hub keeps per device, per address or per series grows without
 * bound: runtimes of devices gone for long are forgotten (and what must
 * survive comes back from disk), the failed-login table has a size, and the
 * live snapshot remembers at most PULSEWIRE_LIVE_MAX_SERIES series.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { LiveClient } from '../live/live-client.js';
import { TestDevice, type Refusal } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';

let hub: TestHub | undefined;
afterEach(async () => { await hub?.close(); hub = undefined; });

const metrics = async () => (await hub!.app.metricsText()).text;

async function ack(device: TestDevice, frame: Uint8Array): Promise<number> {
  device.send(frame);
  for (;;) {
    const message = await device.next();
    if (message.type === 2) return message.code ?? 0;
  }
}

describe('per-device runtimes of devices gone for long', () => {
  it('are forgotten after PULSEWIRE_DEVICE_FORGET_MS; the window, names and message count come back with the device', async () => {
    hub = await startHub({ PULSEWIRE_DEVICE_FORGET_MS: '1000', PULSEWIRE_MAX_NAMES_PER_DEVICE: '1' });
    const frame = encodeTelemetry(1, [senmlRecord({ n: 'only', v: 1 })]);
    let device = await TestDevice.connect(hub.deviceUrl, { id: 'gone-1' });
    expect(await ack(device, frame)).toBe(0);
    await device.close();
    // A device still connected is never forgotten, however quiet.
    const quiet = await TestDevice.connect(hub.deviceUrl, { id: 'quiet-1' });

    await waitFor(() => hub!.app.gateway.runtimes.peek('gone-1') === undefined, { what: 'runtime forgotten' });
    expect(hub.app.gateway.runtimes.peek('quiet-1')).toBeDefined();
    expect(await metrics()).toMatch(/^pulsewire_device_runtimes_forgotten_total [1-9]/m);
    expect(await metrics()).toMatch(/^pulsewire_device_runtimes 1$/m);

    device = await TestDevice.connect(hub.deviceUrl, { id: 'gone-1' });
    expect(await ack(device, frame)).toBe(1); // the resend is still a duplicate: the window came back from the spool
    expect(await ack(device, encodeTelemetry(2, [senmlRecord({ n: 'other', v: 2 })]))).toBe(5); // and so did the names
    await device.close();
    await quiet.close();
    await waitFor(async () => (await hub!.api('GET', '/v1/devices/gone-1')).body.messagesIn === 3, { what: 'message count carried across' });
  });
});

describe('the failed-login table', () => {
  it('holds at most PULSEWIRE_AUTH_MAX_ADDRESSES addresses, forgetting the least recently failed, and says so', async () => {
    hub = await startHub({ PULSEWIRE_AUTH_MAX_ADDRESSES: '2' });
    for (const localAddress of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) {
      const refused = await TestDevice.connect(hub.deviceUrl, { id: 'guess-1', secret: 'wrong', localAddress }).then(
        () => { throw new Error('accepted a wrong secret'); },
        (err: Refusal) => err,
      );
      expect(refused.status).toBe(401);
    }
    expect(hub.app.gateway.authLimiter.size).toBe(2);
    expect(await metrics()).toMatch(/^pulsewire_auth_limiter_addresses\{limiter="device"\} 2$/m);
    expect(await metrics()).toMatch(/^pulsewire_auth_limiter_evictions_total\{limiter="device"\} 1$/m);
  });
});

describe('the live snapshot', () => {
  it('remembers at most PULSEWIRE_LIVE_MAX_SERIES series; readings beyond are streamed and counted, not kept', async () => {
    hub = await startHub({ PULSEWIRE_LIVE_MAX_SERIES: '2' });
    await hub.app.liveSeeded;
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'many-1' });
    expect(await ack(device, encodeTelemetry(1, ['a', 'b', 'c'].map((n) => senmlRecord({ n, v: 1 }))))).toBe(0);
    await device.close();
    await waitFor(async () => /^pulsewire_live_untracked_readings_total 1$/m.test(await metrics()), { what: 'untracked reading counted' });
    expect(await metrics()).toMatch(/^pulsewire_live_snapshot_series 2$/m);
    const live = await LiveClient.connect(hub.baseUrl);
    const snapshot = await live.next((f) => f.type === 'snapshot');
    expect(snapshot.latest.map((r: { name: string }) => r.name).sort()).toEqual(['a', 'b']);
    await live.close();
  });
});
