/**
 * device-sim with `--transport http` against a real hub and influxd: the
 * fleet's telemetry goes up in POST batches and is stored exactly once,
 * commands come down by long poll and are answered with RESULT by POST.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runFleet, withDefaults, type Fleet } from '../../device-sim/index.js';
import { httpEndpoint } from '../../device-sim/http-channel.js';
import { resolveOptions, OptionError } from '../../device-sim/options.js';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { until } from '../support/wait.js';

/** How long to wait for something the hub or the fleet must do: a ceiling for a busy machine, not a speed claim. */
const CEILING_MS = 15_000;
let hub: TestHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

describe('device-sim --transport http', () => {
  it('telemetry acknowledged and stored once; a command is delivered by long poll and succeeds', async () => {
    hub = await startHub();
    const h = hub;
    let online = 0;
    h.app.bus.on('device.online', () => online++);
    let outcome: Promise<string> | undefined;
    const onStart = (fleet: Fleet) => {
      outcome = (async () => {
        await until(() => (fleet.snapshot().connected === 5 ? true : undefined), CEILING_MS);
        const created = await h.api('POST', '/v1/devices/hsim-00001/commands', { name: 'set_led', args: { on: true } });
        const done = await h.api('GET', `/v1/devices/hsim-00001/commands/${created.body.id}?wait=${CEILING_MS / 1000}`);
        return done.body.status as string;
      })();
    };
    const summary = await runFleet({
      ...withDefaults({ url: h.deviceUrl, transport: 'http', pollWait: 2, enrollmentKey: ENROLLMENT_KEY, devices: 5, prefix: 'hsim-', rate: 4, batch: 2, duration: 3, ramp: 1000 }),
      drainMs: 5_000,
    }, { onStart });
    expect(await outcome).toBe('succeeded');
    const t = summary.telemetry;
    expect(t.sent).toBeGreaterThanOrEqual(5); // one per device at least; more depends on the machine's speed
    expect(t.acknowledged).toEqual({ 0: t.sent });
    expect(t.unacknowledged).toBe(0);
    expect(online).toBe(5);
    const rows = await h.db.query(`SELECT count("value") AS v, count("sum") AS s FROM telemetry WHERE "device" =~ /^hsim-/`);
    expect(rows.reduce((n, r) => n + Number(r.v ?? 0) + Number(r.s ?? 0), 0)).toBe(t.records);
    const state = await h.api('GET', '/v1/devices/hsim-00001/state');
    expect(state.body.reported).toMatchObject({ fw: 'sim-1.0.0', led: true });
  });

  it('options: --transport takes ws or http; http accepts ws:// and http:// URLs', () => {
    const base = { 'enrollment-key': 'k' };
    expect(resolveOptions({ ...base, transport: 'http', url: 'http://127.0.0.1:8080' })).toMatchObject({ transport: 'http', pollWait: 20 });
    expect(() => resolveOptions({ ...base, transport: 'carrier-pigeon' })).toThrow(OptionError);
    expect(() => resolveOptions({ ...base, url: 'http://127.0.0.1:8080' })).toThrow(/ws:\/\//);
    expect(() => resolveOptions({ ...base, transport: 'http', 'poll-wait': '61' })).toThrow(/poll-wait/);
    expect(httpEndpoint('ws://127.0.0.1:8080/v1/device')).toBe('http://127.0.0.1:8080/v1/device/messages');
    expect(httpEndpoint('wss://hub.example/v1/device')).toBe('https://hub.example/v1/device/messages');
    expect(httpEndpoint('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080/v1/device/messages');
  });
});
