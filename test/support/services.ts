/**
 * The hub's services without sockets (src/services.ts, as app.ts wires them)
 * on real stores, for tests of commands, state and jobs that need a crash at
 * an exact point or a clock the test moves. `connect` plays the gateway: it
 * makes a link the device's connection here and says so on the bus.
 */
import type { DeviceLink } from '../../src/commands/outbox.js';
import { DeviceOutbox } from '../../src/commands/outbox.js';
import type { CommandLimits } from '../../src/commands/command-service.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { BusBridge } from '../../src/cluster/bus-bridge.js';
import { EventBus } from '../../src/events/bus.js';
import { openServices, type Services } from '../../src/services.js';
import type { Stores } from '../../src/stores/stores.js';

export const TEST_LIMITS: CommandLimits = {
  commandQueueMax: 100, commandTtlMs: 3_600_000, commandTimeoutMs: 30_000, commandRetentionMs: 86_400_000, maxMessageBytes: 65_536,
};

export const quiet = { info() {}, warn() {} };

export type ServiceHarness = Services & {
  bus: EventBus;
  outbox: DeviceOutbox;
  /** Every `command` point the services spooled: [deviceId, status]. */
  points: [string, string][];
  connect(deviceId: string, link: DeviceLink): void;
  disconnect(deviceId: string): void;
  stop(): Promise<void>;
};

export type ServicesOptions = {
  limits?: Partial<CommandLimits>;
  now?: () => number;
  nodeId?: string;
  /**
   * Nodes on shared JetStream stores: relay this node's bus over NATS as a
   * cluster node does (cluster/bus-bridge.ts), so one node hears the command
   * statuses another made (a job runner counts an operator's cancel there).
   */
  bridge?: { nc: NatsConnection; namespace: string };
};

export async function startServices(stores: Stores, options: ServicesOptions = {}): Promise<ServiceHarness> {
  const bus = new EventBus();
  const bridge = options.bridge && new BusBridge({ ...options.bridge, bus, nodeId: options.nodeId ?? 'test-node', logger: quiet });
  bridge?.start();
  const links = new Map<string, DeviceLink>();
  const points: [string, string][] = [];
  const services = await openServices({
    stores, bus, nodeId: options.nodeId ?? 'test-node', nodeLeaseMs: 3000, logger: quiet,
    limits: { ...TEST_LIMITS, ...options.limits },
    points: { append: async (deviceId, list) => { for (const p of list) points.push([deviceId, String(p.tags!.status)]); } },
    local: () => ({ isConnectedHere: (id) => links.has(id) }),
    ...(options.now ? { now: options.now } : {}),
  });
  const outbox = new DeviceOutbox({ bus, commands: services.commands, state: services.deviceState, linkOf: (id) => links.get(id), logger: quiet });
  await services.start();
  return {
    ...services,
    bus,
    outbox,
    points,
    connect(deviceId, link) {
      links.set(deviceId, link);
      bus.emit('device.online', { deviceId, at: Date.now(), remoteAddress: '127.0.0.1', method: 'secret' });
    },
    disconnect(deviceId) {
      links.delete(deviceId);
    },
    async stop() {
      outbox.close();
      await services.close();
      bridge?.stop();
    },
  };
}
