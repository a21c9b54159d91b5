/**
 * The pure parts of device-sim: profiles produce packs the hub accepts,
 * commands and DESIRED are answered as the protocol says, chaos roles and
 * frames are what they claim, the latency histogram's percentiles are right,
 * and the resource checks give the right advice and source addresses.
 */
import { describe, expect, it } from 'vitest';
import { PulsewireError } from '../../src/errors/catalog.js';
import { decodeDeviceFrame, encodeTelemetry, resolvePack, type Reading } from '../../src/protocol/index.js';
import { assignChaos, ChaosRole, MALFORMED_FRAMES } from '../../device-sim/chaos.js';
import { applyDesired, handleCommand } from '../../device-sim/commands.js';
import { buildPack, PROFILES, profileFor } from '../../device-sim/profiles/index.js';
import { checkFdLimit, devicesPerProcess, processesFor, readFdLimit, sourceAddressFor } from '../../device-sim/resources.js';
import { LatencyHistogram } from '../../device-sim/stats.js';
import { Fleet, resolveOptions, withDefaults, type FleetOptions } from '../../device-sim/index.js';
import { splitFleet } from '../../device-sim/processes.js';

/** Through the wire as the hub sees it: encode, decode the frame, resolve the pack. */
function resolveOnHub(records: unknown[], nowS: number): Reading[] {
  const frame = decodeDeviceFrame(encodeTelemetry(7, records));
  if (frame instanceof PulsewireError || frame.type !== 1) throw new Error(`bad frame: ${String(frame)}`);
  const resolved = resolvePack(frame.pack, { nowUs: nowS * 1e6 });
  if (resolved instanceof PulsewireError) throw new Error(`hub refuses pack: ${resolved.detail ?? resolved.message}`);
  return resolved.readings;
}

describe('profiles', () => {
  it.each(PROFILES.map((p) => [p.name, p]))('%s: valid packs of exactly `batch` records, no (name, time) repeats', (_name, profile) => {
    const state = profile.init(Math.random, 1_764_000_000);
    const seen = new Set<string>();
    let from = 1_764_000_000;
    for (const batch of [1, 2, 3, 5, 8, 20]) {
      const to = from + 5;
      const records = buildPack(profile, state, 'sim-00001/', from, to, batch, Math.random);
      expect(records).toHaveLength(batch);
      const readings = resolveOnHub(records, to);
      expect(readings).toHaveLength(batch);
      for (const r of readings) {
        expect(r.name.startsWith('sim-00001/')).toBe(true);
        expect(r.timeUs).toBeGreaterThan(from * 1e6);
        expect(r.timeUs).toBeLessThanOrEqual(to * 1e6);
        const key = `${r.name}@${r.timeUs}`;
        expect(seen.has(key)).toBe(false);
        seen.add(key);
      }
      from = to;
    }
  });

  it('use base values: bn and bt only on the first record, absolute time, bu where units are shared', () => {
    const records = buildPack(profileFor('vibration', 0), { burstLeft: 0, amplitude: 0 }, 'v1/', 1_764_000_000, 1_764_000_010, 4, Math.random);
    expect(records[0]!.get(-2)).toBe('v1/');
    expect(records[0]!.get(-3)).toBe(1_764_000_010);
    expect(records[0]!.get(-4)).toBe('m/s2');
    for (const r of records.slice(1)) {
      expect(r.has(-2) || r.has(-3) || r.has(-4) || r.has(1)).toBe(false);
    }
  });

  it('energy meter reports cumulative energy as a growing SenML sum', () => {
    const meter = profileFor('energy-meter', 0);
    const state = meter.init(Math.random, 1_764_000_000);
    const readings = resolveOnHub(buildPack(meter, state, 'e/', 1_764_000_000, 1_764_003_600, 40, Math.random), 1_764_003_600);
    const energy = readings.filter((r) => r.name === 'e/energy');
    expect(energy.every((r) => r.kind === 'sum' && r.unit === 'Wh')).toBe(true);
    const values = energy.map((r) => r.value as number);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values.at(-1)! - values[0]!).toBeGreaterThan(100); // at least 120 W for most of an hour
  });

  it('mixed assigns profiles round-robin', () => {
    expect([0, 1, 2, 3, 4].map((i) => profileFor('mixed', i).name)).toEqual(['thermostat', 'energy-meter', 'gps-tracker', 'vibration', 'thermostat']);
  });
});

describe('commands and DESIRED', () => {
  it('set_interval and set_led succeed with valid arguments and change the settings', () => {
    expect(handleCommand('set_interval', new Map([['seconds', 30]]))).toMatchObject({ status: 1, changed: { intervalS: 30 } });
    expect(handleCommand('set_led', { on: true })).toMatchObject({ status: 1, changed: { led: true } });
  });

  it('bad arguments and unknown names are rejected with status 3 and change nothing', () => {
    for (const [name, args] of [['set_interval', { seconds: -1 }], ['set_interval', null], ['set_led', { on: 'yes' }], ['self_destruct', null]] as const) {
      const outcome = handleCommand(name, args);
      expect(outcome.status).toBe(3);
      expect(outcome.changed).toBeUndefined();
      expect(outcome.outcome).toBe('rejected');
    }
  });

  it('echo succeeds with its arguments as the payload, after delayMs when given, and changes nothing', () => {
    expect(handleCommand('echo', null)).toMatchObject({ status: 1, payload: null, delayMs: 0 });
    const args = new Map<string, unknown>([['delayMs', 250], ['n', 7]]);
    expect(handleCommand('echo', args)).toEqual({ status: 1, payload: args, delayMs: 250, outcome: 'succeeded' });
    expect(handleCommand('echo', { delayMs: -1 })).toMatchObject({ status: 3 });
    expect(handleCommand('echo', { delayMs: 'soon' })).toMatchObject({ status: 3 });
  });

  it('reboot is acknowledged as received (0) and asks for a reconnect', () => {
    expect(handleCommand('reboot', null)).toMatchObject({ status: 0, reboot: true });
  });

  it('DESIRED applies known keys with valid values only', () => {
    expect(applyDesired(new Map<string, unknown>([['interval', 5], ['led', true], ['colour', 'red']]))).toEqual({ intervalS: 5, led: true });
    expect(applyDesired(new Map<string, unknown>([['interval', 'fast']]))).toEqual({});
  });
});

describe('chaos', () => {
  it('deals exact, disjoint roles', () => {
    const roles = assignChaos(1_000, { zombies: 10, flap: 5, malformed: 2.5 });
    const count = (role: number) => roles.filter((r) => (r & role) !== 0).length;
    expect([count(ChaosRole.ZOMBIE), count(ChaosRole.FLAP), count(ChaosRole.MALFORMED)]).toEqual([100, 50, 25]);
    expect(roles.filter((r) => r !== 0 && (r & (r - 1)) !== 0)).toHaveLength(0);
  });

  it('a fleet split into parts deals exactly the whole fleet\'s count', () => {
    // 3 x 333 + 1 devices at 10 %: per part round(33.3) would give 99; the parts' shares give the fleet's 100.
    const parts = [[0, 333], [333, 333], [666, 334]] as const;
    const zombies = parts.map(([offset, devices]) =>
      assignChaos(devices, { zombies: 10, flap: 0, malformed: 0 }, Math.random, offset).filter((r) => r & ChaosRole.ZOMBIE).length);
    expect(zombies.reduce((a, b) => a + b)).toBe(100);
  });

  it('every malformed frame is one the hub must close with 1007', () => {
    for (const frame of MALFORMED_FRAMES) {
      const decoded = decodeDeviceFrame(frame);
      expect(decoded).toBeInstanceOf(PulsewireError);
      expect((decoded as PulsewireError).spec.close).toBe(1007);
    }
  });
});

describe('LatencyHistogram', () => {
  it('gives p50 and p99 within 5 %', () => {
    const h = new LatencyHistogram();
    for (let ms = 1; ms <= 1_000; ms++) h.record(ms);
    expect(h.quantile(0.5)).toBeGreaterThanOrEqual(500);
    expect(h.quantile(0.5)).toBeLessThanOrEqual(525);
    expect(h.quantile(0.99)).toBeGreaterThanOrEqual(990);
    expect(h.quantile(0.99)).toBeLessThanOrEqual(1_000);
    expect(h.count).toBe(1_000);
  });
});

describe('resources', () => {
  it('reads the open-file limit and says what to run when it is short', () => {
    const limits = 'Max cpu time              unlimited            unlimited            seconds\nMax open files            20000                20000                files\n';
    expect(readFdLimit(limits)).toEqual({ soft: 20_000, hard: 20_000 });
    expect(checkFdLimit(10_000, { soft: 20_000, hard: 20_000 }).ok).toBe(true);
    const short = checkFdLimit(50_000, { soft: 20_000, hard: 20_000 });
    expect(short.ok).toBe(false);
    expect(short.advice).toContain('ulimit -Hn 50256 && ulimit -n 50256');
    expect(checkFdLimit(50_000, { soft: 1_024, hard: 100_000 }).advice).toContain('Run `ulimit -n 50256`');
  });

  it('--processes auto: as few processes as hold the fleet at the open-files limit, two descriptors per http device', () => {
    const limit = { soft: 20_000, hard: 20_000 };
    expect(devicesPerProcess('ws', limit)).toBe(19_744);
    expect(processesFor(10, 'ws', limit)).toBe(1);
    expect(processesFor(19_744, 'ws', limit)).toBe(1);
    expect(processesFor(19_745, 'ws', limit)).toBe(2);
    expect(processesFor(50_000, 'ws', limit)).toBe(3);
    expect(processesFor(50_000, 'http', limit)).toBe(6);
    expect(processesFor(50_000, 'ws', { soft: Infinity, hard: Infinity })).toBe(1);
  });

  it('spreads devices past 25,000 per address over 127.0.0.2, .3, ... only towards a loopback hub', () => {
    // A fleet that fits one address: the kernel's choice.
    expect(sourceAddressFor(25_000, '127.0.0.1')).toBeUndefined();
    expect(sourceAddressFor(1, '127.0.0.1', 25_000)).toBeUndefined();
    // A larger one binds every device, the first group too (a bound port is lost to unbound connects).
    expect(sourceAddressFor(1, '127.0.0.1', 50_000)).toBe('127.0.0.1');
    expect(sourceAddressFor(25_000, '127.0.0.1', 50_000)).toBe('127.0.0.1');
    expect(sourceAddressFor(25_001, '127.0.0.1')).toBe('127.0.0.2');
    expect(sourceAddressFor(50_001, 'localhost')).toBe('127.0.0.3');
    expect(sourceAddressFor(60_000, 'hub.example.com')).toBeUndefined();
  });
});

describe('a fleet split over processes', () => {
  it('gets contiguous parts differing by at most one device, and its ramp shared out', () => {
    const parts = splitFleet({ devices: 50_000, first: 1, ramp: 500, processes: 3 });
    expect(parts.map((p) => [p.offset, p.devices, p.fleetLast])).toEqual([[0, 16_667, 50_000], [16_667, 16_667, 50_000], [33_334, 16_666, 50_000]]);
    expect(parts.reduce((sum, p) => sum + p.ramp, 0)).toBeCloseTo(500);
  });

  it('has the ids one process would create, also where the number of digits changes', () => {
    // 99,990 to 100,014: one process pads every id to 6 digits; a part ending below 100,000 must too.
    const options = withDefaults({ url: 'ws://127.0.0.1:1/v1/device', enrollmentKey: 'k', devices: 25, first: 99_990, prefix: 'p-', processes: 3 });
    const ids = (o: FleetOptions) => new Fleet({ ...o, warn: () => {} }).devices.map((d) => d.id);
    const whole = ids(options);
    const split = splitFleet(options).flatMap((part) =>
      ids({ ...options, devices: part.devices, first: options.first + part.offset, fleetLast: part.fleetLast, fleetOffset: part.offset }));
    expect(whole[0]).toBe('p-099990');
    expect(split).toEqual(whole);
  });

  it('binds each device to the source address one process would use', () => {
    // 24,991 to 25,010: one process binds the first ten to 127.0.0.1 and the rest to 127.0.0.2; so must each part.
    const options = withDefaults({ url: 'ws://127.0.0.1:1/v1/device', enrollmentKey: 'k', devices: 20, first: 24_991, processes: 3 });
    const sources = (o: FleetOptions) => {
      const fleet = new Fleet({ ...o, warn: () => {} });
      return fleet.devices.map((d) => fleet.connectOptions(d).localAddress);
    };
    const whole = sources(options);
    expect(whole).toEqual([...Array<string>(10).fill('127.0.0.1'), ...Array<string>(10).fill('127.0.0.2')]);
    expect(splitFleet(options).flatMap((part) =>
      sources({ ...options, devices: part.devices, first: options.first + part.offset, fleetLast: part.fleetLast, fleetOffset: part.offset }))).toEqual(whole);
  });

  it('refuses a prefix whose padded ids are too long, and more processes than devices', () => {
    const raw = { 'enrollment-key': 'k', prefix: 'x'.repeat(60), devices: '10' };
    // 'x' * 60 + '00010' is 65 characters, though '10' alone would fit.
    expect(() => resolveOptions(raw)).toThrow('--prefix');
    expect(() => resolveOptions({ 'enrollment-key': 'k', devices: '2', processes: '3' })).toThrow('--processes: at most one per device');
    expect(resolveOptions({ 'enrollment-key': 'k', devices: '2', processes: '2' }).processes).toBe(2);
  });

  it('refuses a --url without the device path, saying what it expects (it used to reconnect forever on 404)', () => {
    for (const url of ['ws://127.0.0.1:8080', 'ws://127.0.0.1:8080/', 'wss://hub.example/v1', 'ws://127.0.0.1:8080/v1/device/messages']) {
      const example = `${url.split('/').slice(0, 3).join('/')}/v1/device`;
      expect(() => resolveOptions({ 'enrollment-key': 'k', url })).toThrow(`--url: must end with the device path /v1/device, e.g. ${example}; got "${url}"`);
    }
    expect(resolveOptions({ 'enrollment-key': 'k', url: 'ws://127.0.0.1:8080/v1/device' }).url).toBe('ws://127.0.0.1:8080/v1/device');
    expect(resolveOptions({ 'enrollment-key': 'k', url: 'wss://hub.example/pulsewire/v1/device' }).url).toBe('wss://hub.example/pulsewire/v1/device');
    // The HTTP fallback adds the path to a bare host itself; another path is refused there too.
    expect(resolveOptions({ 'enrollment-key': 'k', transport: 'http', url: 'http://127.0.0.1:8080' }).transport).toBe('http');
    expect(resolveOptions({ 'enrollment-key': 'k', transport: 'http', url: 'http://127.0.0.1:8080/v1/device/messages' }).transport).toBe('http');
    expect(() => resolveOptions({ 'enrollment-key': 'k', transport: 'http', url: 'http://127.0.0.1:8080/api' })).toThrow('--url: must end with the device path');
  });
});
