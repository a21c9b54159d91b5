/**
 * One process of a fleet split over several (--processes): the same CLI,
 * started by the parent with PART_ENV naming its share. It simulates its
 * contiguous range of the fleet's devices (same ids, same source addresses
 * as one process would use), prints nothing to stdout, and reports over IPC:
 * `ready` once, `status` every second (stats and snapshot, for the fleet's
 * one status line), `done` at the end (stats with the latency histogram and
 * the end state, for the fleet's one summary).
 *
 * It stops on the parent's `stop` (or its own SIGINT/SIGTERM) like a single
 * process does: drain, close with 1000. When the IPC channel goes away the
 * parent is gone: nobody will read the figures, so the child closes its
 * connections at once, without waiting for ACKs, and exits: no orphans.
 */
import { Fleet } from './fleet.js';
import { untilDone } from './index.js';
import type { SimOptions } from './options.js';
import type { Snapshot } from './fleet.js';
import type { StatsData } from './stats.js';
import type { ChaosCounts, EndState } from './summary.js';

/** The environment variable that makes the CLI a child: JSON of its Part. */
export const PART_ENV = 'PULSEWIRE_SIM_PART';

/** A child's share of the fleet. */
export type Part = {
  /** 0-based number of the process. */
  index: number;
  /** Index of its first device in the whole fleet (its first number is --first + offset). */
  offset: number;
  devices: number;
  /** The whole fleet's last device number: ids and source addresses as a single process would have them. */
  fleetLast: number;
  /** Its share of --ramp, so the fleet as a whole keeps to --ramp. */
  ramp: number;
};

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'status'; stats: StatsData; snapshot: Snapshot; chaos: ChaosCounts }
  | { type: 'done'; stats: StatsData; end: EndState };

export type ParentMessage = { type: 'stop' };

const REPORT_MS = 1_000;
/** After the parent is gone: closes get this long before the process exits regardless. */
const ORPHAN_EXIT_MS = 5_000;

export function partFromEnv(env: NodeJS.ProcessEnv = process.env): Part | undefined {
  const raw = env[PART_ENV];
  return raw ? (JSON.parse(raw) as Part) : undefined;
}

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/** Runs this process's part until the duration ends, `signal` aborts or the parent says stop; then exits. */
export async function runChild(options: SimOptions, part: Part, signal: AbortSignal): Promise<never> {
  const fleet = new Fleet({
    ...options,
    devices: part.devices,
    first: options.first + part.offset,
    ramp: part.ramp,
    status: 'off',
    summary: undefined,
    processes: 1,
    fleetLast: part.fleetLast,
    fleetOffset: part.offset,
    warn: (line) => process.stderr.write(`device-sim[${part.index + 1}]: ${line}\n`),
  }).start();

  const stop = new AbortController();
  signal.addEventListener('abort', () => stop.abort(), { once: true });
  process.on('message', (message: ParentMessage) => {
    if (message?.type === 'stop') stop.abort();
  });
  process.once('disconnect', () => {
    setTimeout(() => process.exit(1), ORPHAN_EXIT_MS).unref();
    void fleet.stop(0).then(() => process.exit(1));
  });

  const report = setInterval(() => {
    void send({ type: 'status', stats: fleet.stats.toJSON(), snapshot: fleet.snapshot(), chaos: fleet.chaosCounts() });
  }, REPORT_MS);
  await send({ type: 'ready' });
  await untilDone(options.duration, stop.signal);
  await fleet.stop();
  clearInterval(report);
  if (!process.connected) process.exit(1);
  await send({ type: 'done', stats: fleet.stats.toJSON(), end: fleet.endState() });
  process.exit(0);
}
