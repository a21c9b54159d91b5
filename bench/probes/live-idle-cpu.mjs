#!/usr/bin/env node
/**
 * Probe: what the live stream costs the hub per reading while nobody watches
 * (no dashboard, no SSE client: most of a hub's life). A built hub's LiveHub
 * (`--root DIR`, for A/B) is fed 'telemetry.accepted' events shaped as the
 * intake emits them (500 devices, 10 readings a message, a tick every 1,000
 * messages as at 10,000 messages/s), GC included; a pass with no LiveHub is
 * taken off. Prints the process's CPU-s per million readings.
 *
 *   node bench/probes/live-idle-cpu.mjs [--root DIR] [--messages 300000]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { root: { type: 'string' }, messages: { type: 'string' } } });
const root = path.resolve(values.root ?? '.');
const messages = Number(values.messages ?? 300_000);
const { LiveHub } = await import(path.join(root, 'dist/src/live/stream-hub.js'));
const { EventBus } = await import(path.join(root, 'dist/src/events/bus.js'));
const names = Array.from({ length: 10 }, (_, i) => `p${i}`);
const devices = Array.from({ length: 500 }, (_, i) => `probe-${i}`);

/** CPU-s per million readings of `messages` events on `bus` (the readings are made in every pass, listened to or not). */
function pass(bus, hub) {
  const c0 = process.cpuUsage();
  let t = 1_700_000_000_000_000;
  for (let m = 0; m < messages; m++) {
    t += 100;
    const readings = names.map((name, i) => ({ name, timeUs: t, kind: 'value', value: m + i }));
    if (bus.hasListeners('telemetry.accepted')) bus.emit('telemetry.accepted', { deviceId: devices[m % devices.length], readings });
    if (hub && m % 1000 === 999) hub.tick();
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6 / ((messages * names.length) / 1e6);
}

// The options src/live/plugin.ts gives it by default.
const hub = new LiveHub({ tickMs: 100, ringTicks: 600, ringItems: 100_000, maxSeries: 1_000_000, conflateBytes: 1 << 20, maxBufferedBytes: 8 << 20, stallMs: 30_000 });
const bus = new EventBus();
void hub.start(bus, { list: async () => ({ devices: [] }), isOnline: () => false });
pass(new EventBus(), undefined); // warm-up
const base = pass(new EventBus(), undefined);
pass(bus, hub); // warm-up
const withHub = pass(bus, hub);
hub.stop(1001, 'probe over');
console.log(JSON.stringify({ root, readings: messages * names.length, baseCpuSecondsPerMillion: +base.toFixed(3), liveCpuSecondsPerMillion: +(withHub - base).toFixed(3) }));
