/**
 * The hub's services over its stores, wired once, in the order they need
 * each other, for app.ts and for tests that drive the services without
 * sockets. Nothing here knows which backend the stores are.
 *
 * Start order matters and is written here, not left to registration order:
 * 1. open: what an earlier run of this node left behind is settled before
 *    anything connects (devices it left online, commands it was writing);
 * 2. start(), once everything that listens is registered: this node announces
 *    itself and takes the leases of work done once per cluster (command
 *    deadlines and pruning, job rollouts), which with one process it holds at
 *    once.
 */
import { Leases } from './cluster/leases.js';
import { NodeDirectory } from './cluster/node-directory.js';
import { CommandService, type CommandLimits } from './commands/command-service.js';
import { CommandStore } from './commands/command-store.js';
import { CommandDeadlines } from './commands/deadlines.js';
import type { Scheduler } from './commands/deadline.js';
import type { EventBus } from './events/bus.js';
import { JobRunner } from './jobs/job-runner.js';
import { JobService } from './jobs/job-service.js';
import { JobStore } from './jobs/job-store.js';
import { DevicePresence } from './presence/device-presence.js';
import { OnlineDevices, type LocalSessions } from './presence/online-devices.js';
import { DeviceRegistry, HUB_RESTART_REASON } from './registry/device-registry.js';
import { StateService } from './state/state-service.js';
import { StateStore } from './state/state-store.js';
import type { commandPoint } from './storage/schema.js';
import type { Stores } from './stores/stores.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export type ServiceOptions = {
  stores: Stores;
  bus: EventBus;
  nodeId: string;
  nodeLeaseMs: number;
  limits: CommandLimits;
  /** Where `command` points go (the spool). */
  points: { append(deviceId: string, points: ReturnType<typeof commandPoint>[]): Promise<void> };
  logger: Logger;
  /** This node's connections (the gateway's runtimes), read lazily. */
  local: () => LocalSessions;
  now?: () => number;
  /** The command side's own clock and the scheduler of its hourly prune (tests move and run them). */
  commandClock?: { now?: () => number; pruneScheduler?: Scheduler };
};

export type Services = {
  registry: DeviceRegistry;
  presence: DevicePresence;
  online: OnlineDevices;
  nodes: NodeDirectory;
  leases: Leases;
  commands: CommandService;
  deadlines: CommandDeadlines;
  deviceState: StateService;
  jobs: JobService;
  jobRunner: JobRunner;
  /** Announces this node and takes its leases; call once everything that listens is registered. */
  start(address?: string): Promise<void>;
  /** Hands the leases back, leaves the cluster, waits for writes in flight. Does not close the stores. */
  close(): Promise<void>;
};

export async function openServices(opts: ServiceOptions): Promise<Services> {
  const { stores, bus, nodeId, logger, now } = opts;
  const clock = now ? { now } : {};
  const nodes = new NodeDirectory({ bucket: stores.nodes, nodeId, leaseMs: opts.nodeLeaseMs, logger });
  const leases = new Leases({ bucket: stores.leases, nodeId, leaseMs: opts.nodeLeaseMs, logger });
  const registry = new DeviceRegistry(stores, clock);
  const presence = new DevicePresence(stores.deviceStatus, nodeId);
  const online = new OnlineDevices({ local: opts.local, nodes, presence });

  // Nothing is connected to a process that is only starting: what an earlier run of this node (with
  // one process: of the hub) left online was left by a crash.
  const leftOnline = await presence.releaseAllOf((node) => stores.backend === 'lmdb' || node === nodeId, HUB_RESTART_REASON, Date.now());
  if (leftOnline.length > 0) logger.info({ devices: leftOnline.length }, 'devices left online by the previous run marked offline (hub restart)');

  const commandNow = opts.commandClock?.now ?? now;
  const commandClock = commandNow ? { now: commandNow } : {};
  const commands = new CommandService({ store: new CommandStore(stores), bus, limits: opts.limits, points: opts.points, logger, nodeId, ...commandClock });
  // Safe to finish in the background in a cluster (a marked command is never taken again), where it is a
  // scan of every command in JetStream; with one process it is a quick lmdb read, done before anything starts.
  const recovering = commands.recoverOwnMarks().catch((err: unknown) => logger.warn({ err }, 'sending marks of an earlier run not settled'));
  if (stores.backend === 'lmdb') await recovering;
  const deadlines = new CommandDeadlines({
    service: commands, bus, logger, isNodeAlive: (node) => nodes.isAlive(node), ...commandClock,
    ...(opts.commandClock?.pruneScheduler ? { pruneScheduler: opts.commandClock.pruneScheduler } : {}),
  });
  const deviceState = new StateService({ store: new StateStore(stores), bus, maxMessageBytes: opts.limits.maxMessageBytes, logger, ...clock });
  const jobStore = new JobStore(stores);
  const jobRunner = new JobRunner({
    store: jobStore, commands, registry, bus, logger, retentionMs: opts.limits.commandRetentionMs, isOnline: (id) => online.isOnlineNow(id), ...clock,
  });
  const jobs = new JobService({ store: jobStore, commands, registry, bus, logger, runner: jobRunner, ...clock });

  return {
    registry, presence, online, nodes, leases, commands, deadlines, deviceState, jobs, jobRunner,
    async start(address) {
      await nodes.start(address);
      await leases.hold('command-deadlines', deadlines);
      await leases.hold('jobs', jobRunner);
    },
    async close() {
      await jobRunner.close();
      await leases.close();
      await nodes.stop();
      await commands.close();
      await deviceState.close();
    },
  };
}
