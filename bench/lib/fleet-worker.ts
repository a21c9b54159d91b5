/**
 * device-sim's Fleet in its own process (pinned to the load core), for the
 * scenarios that need real devices rather than the saturating driver: many
 * mostly idle connections (`connections`), zombies (`liveness`) and flapping
 * devices with zombies under load (`soak`). The parent drives it over IPC
 * (see ipc.ts); `commands` uses it as the fleet that answers COMMAND
 * (device-sim's `echo`). Besides the simulator's own summary it watches
 * every zombie's socket from this side: when it opened and when the hub
 * dropped it, to the millisecond (polled every 20 ms); with `sessions` it
 * keeps every session of every device (a soak's zombies and flapping devices
 * reconnect, and a device that should never have dropped must be seen).
 *
 * A fleet larger than one process's open-files limit runs as several of
 * these (fleet-group.ts), each simulating its part of the fleet with the ids,
 * chaos roles and loopback source addresses one process would give it.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ChaosRole } from '../../device-sim/chaos.js';
import { Fleet, withDefaults, type Summary } from '../../device-sim/index.js';
import type { StatsData } from '../../device-sim/stats.js';
import type { EndState } from '../../device-sim/summary.js';
import { serve } from './ipc.js';

export type FleetStartArgs = {
  url: string;
  devices: number;
  prefix: string;
  enrollmentKey?: string;
  /** TELEMETRY messages per second per device. */
  rate: number;
  batch?: number;
  /** Percent of devices that never answer pings. */
  zombies?: number;
  /** New connections per second. */
  ramp: number;
  /** Percent of devices that drop their own connection at random (device-sim `flap`, every ~20 s). */
  flap?: number;
  /** Reconnect after a drop with the protocol's backoff (base 1 s, cap 60 s, full jitter); default off (failed handshakes are always retried). */
  reconnect?: boolean;
  /** Record every session of every device (sessions()); polled every 20 ms, so meant for a few thousand devices. */
  sessions?: boolean;
  /** How long stop() waits for outstanding ACKs (device-sim's default 10 s); a device in backoff (up to 60 s) resends its window when back. */
  drainMs?: number;
  /** A part of a larger fleet (fleet-group.ts): its first device number (default 1)... */
  first?: number;
  /** ...the whole fleet's last number (ids padded to its width, source addresses chosen for its size)... */
  fleetLast?: number;
  /** ...and the part's offset in the whole fleet (chaos roles assigned as for the whole). */
  fleetOffset?: number;
};

export type ZombieTimes = { id: string; openedAt: number; closedAt: number | undefined };

/** A device's role in the fleet (device-sim's chaos): none, zombie (never pongs) or flapping (drops itself). */
export type DeviceRole = 'steady' | 'zombie' | 'flapping';

/** Every session of one device, as seen from its side (20 ms polls); closedAt undefined: still open. */
export type DeviceSessions = { id: string; role: DeviceRole; sessions: Array<{ openedAt: number; closedAt: number | undefined }> };

let fleet: Fleet | undefined;
/** The options object the running fleet reads its ramp from on every tick. */
let fleetOptions: { ramp: number } | undefined;
let watcher: NodeJS.Timeout | undefined;
let sessionWatcher: NodeJS.Timeout | undefined;
/** When the fleet began closing its connections at stop() (after its drain). */
let closingAt: number | undefined;
const zombieTimes = new Map<string, ZombieTimes>();
const sessionLog = new Map<string, DeviceSessions>();

const roleOf = (roles: number): DeviceRole =>
  (roles & ChaosRole.ZOMBIE ? 'zombie' : roles & ChaosRole.FLAP ? 'flapping' : 'steady');

function start(args: FleetStartArgs): { zombies: number; flapping: number } {
  if (fleet) throw new Error('a fleet is already running');
  const options = {
    ...withDefaults({
      url: args.url, devices: args.devices, prefix: args.prefix, enrollmentKey: args.enrollmentKey,
      rate: args.rate, batch: args.batch ?? 4, zombies: args.zombies ?? 0, flap: args.flap ?? 0, ramp: args.ramp, status: 'off',
      ...(args.first !== undefined ? { first: args.first } : {}),
    }),
    ...(args.drainMs !== undefined ? { drainMs: args.drainMs } : {}),
    ...(args.fleetLast !== undefined ? { fleetLast: args.fleetLast } : {}),
    ...(args.fleetOffset !== undefined ? { fleetOffset: args.fleetOffset } : {}),
    // No reconnect within a run unless asked: a dropped device stays dropped, so each zombie is timed
    // once and a connection count is not refilled behind the bench's back. A handshake that failed
    // (the hub's accept queue outran device-sim's timeout) is retried with the protocol's backoff like
    // firmware does, so a slow accept shows as time and failed attempts (summary), not as lost devices.
    stayDownAfterDrop: !args.reconnect,
    warn: () => {},
  };
  fleetOptions = options;
  fleet = new Fleet(options).start();
  loopDelay.reset();
  loopDelay.enable();
  zombieTimes.clear();
  const zombies = fleet.devices.filter((d) => (d.roles & ChaosRole.ZOMBIE) !== 0);
  watcher = setInterval(() => {
    const now = Date.now();
    for (const d of zombies) {
      const t = zombieTimes.get(d.id);
      if (!t) {
        if (d.state === 'open') zombieTimes.set(d.id, { id: d.id, openedAt: now, closedAt: undefined });
      } else if (t.closedAt === undefined && d.state !== 'open') {
        t.closedAt = now;
      }
    }
  }, 20);
  sessionLog.clear();
  closingAt = undefined;
  if (args.sessions) {
    const f = fleet;
    const all = f.devices;
    for (const d of all) sessionLog.set(d.id, { id: d.id, role: roleOf(d.roles), sessions: [] });
    sessionWatcher = setInterval(() => {
      // The fleet's own closes at stop() are not drops: those sessions stay open in the log.
      if (f.closing) {
        closingAt ??= Date.now();
        return;
      }
      const now = Date.now();
      for (const d of all) {
        const log = sessionLog.get(d.id)!.sessions;
        const last = log.at(-1);
        const open = last !== undefined && last.closedAt === undefined;
        if (d.state === 'open' && !open) log.push({ openedAt: now, closedAt: undefined });
        else if (d.state !== 'open' && open) last.closedAt = now;
      }
    }, 20);
  }
  return { zombies: zombies.length, flapping: fleet.chaosCounts().flapping };
}

/** Every device's sessions so far (start with `sessions: true`). */
function sessions(): DeviceSessions[] {
  return [...sessionLog.values()];
}

/** The state of the named devices right now ('open', 'idle', ...; undefined: not in this fleet). */
function states(args: { ids: string[] }): Record<string, string | undefined> {
  if (!fleet) throw new Error('no fleet');
  const byId = new Map(fleet.devices.map((d) => [d.id, d.state]));
  return Object.fromEntries(args.ids.map((id) => [id, byId.get(id)]));
}

const total = (tally: Record<string, number>) => Object.values(tally).reduce((n, v) => n + v, 0);

/**
 * This process's event-loop delay since the fleet started: a simulator starved of CPU answers pings late,
 * and a server that times out its devices' pongs then drops them; that is the load generator's failure, not the server's.
 */
const loopDelay = monitorEventLoopDelay({ resolution: 20 });

function snapshot() {
  if (!fleet) throw new Error('no fleet');
  const { connects, sent, resent, disconnects, connectFailures, commands, flaps, acked } = fleet.stats;
  return {
    ...fleet.snapshot(), connects, sent, resent, flaps, acked, at: Date.now(), zombiesClosed: [...zombieTimes.values()].filter((z) => z.closedAt !== undefined).length,
    disconnects: total(disconnects), connectFailures: total(connectFailures), commandsAnswered: total(commands),
    /** Longest event-loop delay of this process since its fleet started, ms (a fleet group: the longest of its processes). */
    loopDelayMaxMs: loopDelay.max / 1e6,
  };
}

/** What snapshot() answers. */
export type FleetSnapshot = ReturnType<typeof snapshot>;

/**
 * Connected count and connections made, every `everyMs` from now on, taken in this process (an IPC
 * round trip per sample stalls when this process is busy reconnecting thousands of devices).
 */
let timeline: Array<{ at: number; connected: number; connects: number }> = [];
let recorder: NodeJS.Timeout | undefined;
function record(args: { everyMs: number }): void {
  if (!fleet) throw new Error('no fleet');
  const f = fleet;
  timeline = [];
  clearInterval(recorder);
  const take = () => { timeline.push({ at: Date.now(), connected: f.snapshot().connected, connects: f.stats.connects }); };
  take();
  recorder = setInterval(take, args.everyMs);
}
function recorded(): typeof timeline {
  clearInterval(recorder);
  return timeline;
}

/** Changes the fleet's admission rate (connections per second) from its next tick on. */
function setRamp(args: { ramp: number }): void {
  if (!fleetOptions) throw new Error('no fleet');
  fleetOptions.ramp = args.ramp;
}

/** What stop() answers: the part's summary, its stats and end state for a fleet group to merge, and (with `sessions`) when the fleet began closing its connections, after its drain. */
export type FleetStopResult = { summary: Summary; zombies: ZombieTimes[]; stats: StatsData; end: EndState; closingAt: number | undefined };

async function stop(): Promise<FleetStopResult> {
  if (!fleet) throw new Error('no fleet');
  clearInterval(watcher);
  await fleet.stop();
  clearInterval(sessionWatcher);
  const summary = fleet.summary();
  const result = { summary, zombies: [...zombieTimes.values()], stats: fleet.stats.toJSON(), end: fleet.endState(), closingAt };
  fleet = undefined;
  return result;
}

serve({ start, snapshot, sessions, states, setRamp, record, recorded, stop });
