/**
 * Probe (not a scenario; prints one line per phase, writes nothing): does what
 * one command costs grow with the commands already stored? One built hub,
 * by default a node with NATS (its own nats-server; `--no-nats` for today's
 * lmdb stores), holding a device-sim fleet that answers `echo`, takes
 * commands at a fixed rate in consecutive phases; each phase prints the round
 * trip and the CPU per command of the hub and of nats-server, next to how
 * many commands were stored before it. Few devices means many commands per
 * device (a device's stored commands are read on its every new command);
 * many devices, the same total spread thin.
 *
 *   tsx bench/probes/command-growth.ts [--no-nats] [--devices N] [--rate R] [--phases N] [--seconds S]
 *
 * The hub is pinned to CPU 0, the fleet and the load to CPU 1, nats-server
 * and influxd unpinned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startManagedNatsServer } from '../../src/cluster/managed-nats-server.js';
import { startManagedInfluxd } from '../../src/storage/managed-influxd.js';
import type { CommandLoadResult } from '../lib/command-load.js';
import type { FleetSnapshot } from '../lib/fleet-worker.js';
import { BENCH_ENROLLMENT_KEY, BENCH_OPERATOR_TOKEN, startHubProcess } from '../lib/hub-process.js';
import { Remote } from '../lib/ipc.js';
import { cpuSeconds, pin, placement, until } from '../lib/proc.js';
import { fleetIds } from '../scenarios/commands.js';
import { FLEET_MODULE } from '../scenarios/connections.js';

const { values } = parseArgs({
  options: { 'no-nats': { type: 'boolean' }, devices: { type: 'string' }, rate: { type: 'string' }, phases: { type: 'string' }, seconds: { type: 'string' } },
});
const devices = Number(values.devices ?? 200);
const rate = Number(values.rate ?? 100);
const phases = Number(values.phases ?? 4);
const seconds = Number(values.seconds ?? 20);

const dir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-probe-commands-'));
const place = placement(true);
const nats = values['no-nats'] ? undefined : await startManagedNatsServer({ dataDir: path.join(dir, 'nats') });
const influxd = await startManagedInfluxd({ dataDir: path.join(dir, 'influxd') });
const hub = await startHubProcess({ influxUrl: `${influxd.url}/pulsewire`, env: nats ? { PULSEWIRE_NATS_URL: nats.url, PULSEWIRE_NODE_ID: 'probe-1' } : {} });
const fleet = new Remote(FLEET_MODULE);
const load = new Remote(path.join(path.dirname(FLEET_MODULE), 'command-load.ts'));
try {
  pin(hub.pid, place.subject, place);
  pin(fleet.pid, place.load, place);
  pin(load.pid, place.load, place);
  await fleet.call('start', { url: hub.deviceUrl, devices, prefix: 'probe-', enrollmentKey: BENCH_ENROLLMENT_KEY, rate: 0.0001, batch: 1, ramp: 500, reconnect: true });
  await until(async () => (await fleet.call<FleetSnapshot>('snapshot')).connected >= devices, 120_000, 250);
  console.log(`${nats ? 'one node with NATS' : 'one node, no NATS'}: ${devices} devices, ${rate} commands/s, ${phases} phases of ${seconds} s`);
  let stored = 0;
  for (let phase = 1; phase <= phases; phase++) {
    const hub0 = cpuSeconds(hub.pid);
    const nats0 = nats ? cpuSeconds(nats.pid!) : 0;
    const r = await load.call<CommandLoadResult>('run', {
      baseUrl: hub.baseUrl, token: BENCH_OPERATOR_TOKEN, deviceIds: fleetIds('probe-', devices), commandsPerSecond: rate, seconds,
      waitS: 30, name: 'echo', args: { delayMs: 0 }, warmupS: 1, maxSockets: 500,
    });
    const perCommand = (cpuS: number) => ((cpuS * 1000) / r.issued).toFixed(2);
    console.log(
      `phase ${phase}: ${fmtInt(stored)} stored before (${(stored / devices).toFixed(1)} per device), ${r.issued} issued, ${r.finals.succeeded ?? 0} succeeded; `
      + `round trip p50 ${r.roundTripMs.p50.toFixed(1)} / p99 ${r.roundTripMs.p99.toFixed(1)} ms; CPU ms per command: hub ${perCommand(cpuSeconds(hub.pid) - hub0)}`
      + (nats ? `, nats-server ${perCommand(cpuSeconds(nats.pid!) - nats0)}` : ''),
    );
    stored += r.issued;
  }
  await fleet.call('stop');
} finally {
  await fleet.close();
  await load.close();
  await hub.stop();
  await nats?.stop();
  await influxd.stop();
  rmSync(dir, { recursive: true, force: true });
}

function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}
