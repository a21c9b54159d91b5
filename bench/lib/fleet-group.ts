/**
 * One device-sim fleet over several fleet-worker processes, because one
 * process holds at most its open-files limit of sockets (about 19,700 here).
 * The fleet is split as `device-sim --processes` splits it (splitFleet): N
 * contiguous ranges of the ids one process would create, each with its share
 * of the ramp, the same chaos roles and the same loopback source addresses
 * (127.0.0.1 for the first 25,000 devices of a larger fleet, 127.0.0.2 for the
 * next, ...: device-sim/resources.ts sourceAddressFor). The parent side is
 * the fleet-worker's IPC commands, answered for the whole fleet: counts
 * summed, summaries merged as device-sim merges its children's.
 *
 * With one process it is exactly the single fleet-worker the scenarios used
 * before (the whole fleet as one part).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withDefaults } from '../../device-sim/index.js';
import { splitFleet } from '../../device-sim/processes.js';
import { processesFor } from '../../device-sim/resources.js';
import { Stats } from '../../device-sim/stats.js';
import { buildSummary, type EndState } from '../../device-sim/summary.js';
import type { Part } from '../../device-sim/child.js';
import type { FleetSnapshot, FleetStartArgs, FleetStopResult } from './fleet-worker.js';
import { Remote } from './ipc.js';
import { pin, type Placement } from './proc.js';

const FLEET_MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fleet-worker.ts');

type Sample = { at: number; connected: number; connects: number };

/** As many fleet processes as `devices` need at this open-files limit (device-sim's own rule: 3 for 50,000 here). */
export function fleetProcessesFor(devices: number): number {
  return processesFor(devices, 'ws');
}

export class FleetGroup {
  readonly workers: Remote[];
  #parts: Part[] = [];
  #args: FleetStartArgs | undefined;

  /** `processes` fleet-worker processes, each pinned to the placement's load core (when pinning is on). */
  constructor(processes: number, place: Placement) {
    this.workers = Array.from({ length: Math.max(1, processes) }, () => {
      const worker = new Remote(FLEET_MODULE);
      pin(worker.pid, place.load, place);
      return worker;
    });
  }

  get pids(): number[] {
    return this.workers.map((w) => w.pid);
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Starts the whole fleet, each process its part. `urls`: part i connects to urls[i mod length] (a baseline of
   * several bare servers, each on its own port); default every part to args.url.
   */
  async start(args: FleetStartArgs, urls: string[] = [args.url]): Promise<{ zombies: number }> {
    this.#args = args;
    this.#parts = splitFleet({ devices: args.devices, first: 1, ramp: args.ramp, processes: this.workers.length });
    const started = await Promise.all(this.workers.map((w, i) => {
      const part = this.#parts[i]!;
      return w.call<{ zombies: number }>('start', {
        ...args, url: urls[i % urls.length]!, devices: part.devices, ramp: part.ramp,
        first: 1 + part.offset, fleetLast: part.fleetLast, fleetOffset: part.offset,
      } satisfies FleetStartArgs);
    }));
    return { zombies: started.reduce((n, s) => n + s.zombies, 0) };
  }

  /** The fleet's counts: every number summed over the parts; `at` the latest part's time, the loop delay the longest. */
  async snapshot(): Promise<FleetSnapshot> {
    const parts = await Promise.all(this.workers.map((w) => w.call<FleetSnapshot>('snapshot')));
    const total = { ...parts[0]! };
    for (const part of parts.slice(1)) {
      for (const [key, value] of Object.entries(part) as Array<[keyof FleetSnapshot, number]>) {
        (total as Record<string, number>)[key] = key === 'at' || key === 'loopDelayMaxMs' ? Math.max(total[key], value) : (total[key] as number) + value;
      }
    }
    return total;
  }

  /** The fleet's admission rate (connections per second), shared as the parts' sizes are. */
  async setRamp(ramp: number): Promise<void> {
    const devices = this.#args?.devices ?? 1;
    await Promise.all(this.workers.map((w, i) => w.call('setRamp', { ramp: (ramp * this.#parts[i]!.devices) / devices })));
  }

  async record(everyMs: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('record', { everyMs })));
  }

  /**
   * The connected count and connections made over time, for the whole fleet: at each of the first part's
   * sampling times, every part's latest sample taken by then (its first one before it had any).
   */
  async recorded(): Promise<Sample[]> {
    const timelines = await Promise.all(this.workers.map((w) => w.call<Sample[]>('recorded')));
    const cursors = timelines.map(() => 0);
    return timelines[0]!.map((s) => {
      let connected = 0;
      let connects = 0;
      timelines.forEach((line, i) => {
        while (cursors[i]! + 1 < line.length && line[cursors[i]! + 1]!.at <= s.at) cursors[i]!++;
        const latest = line[cursors[i]!];
        connected += latest?.connected ?? 0;
        connects += latest?.connects ?? 0;
      });
      return { at: s.at, connected, connects };
    });
  }

  /** Stops every part (drain, close with 1000) and answers with one summary for the fleet, as device-sim --processes does. */
  async stop(): Promise<FleetStopResult> {
    const parts = await Promise.all(this.workers.map((w) => w.call<FleetStopResult>('stop')));
    if (parts.length === 1) return parts[0]!;
    const args = this.#args!;
    const stats = Stats.merge(parts.map((p) => p.stats));
    const sum = (key: keyof EndState) => parts.reduce((n, p) => n + p.end[key], 0);
    const end: EndState = {
      endedAt: Math.max(...parts.map((p) => p.end.endedAt)),
      connectedAtEnd: sum('connectedAtEnd'), unacknowledged: sum('unacknowledged'),
      zombies: sum('zombies'), flapping: sum('flapping'), malformed: sum('malformed'),
    };
    const options = withDefaults({ url: args.url, devices: args.devices, prefix: args.prefix, rate: args.rate, batch: args.batch ?? 4, zombies: args.zombies ?? 0, flap: args.flap ?? 0, ramp: args.ramp });
    const closings = parts.map((p) => p.closingAt).filter((t): t is number => t !== undefined);
    const closingAt = closings.length > 0 ? Math.min(...closings) : undefined;
    return { summary: buildSummary(stats, options, end), zombies: parts.flatMap((p) => p.zombies), stats: stats.toJSON(), end, closingAt };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
