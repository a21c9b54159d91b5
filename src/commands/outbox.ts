/**
 * Moves what waits for a device onto its connection: the desired state first
 * (protocol section 3: "right after the connection opens if any is set, and
 * again on every change"), then the queued commands in order. It reacts to
 * three bus events (a device came online, a command was created, desired
 * state changed) and works one device at a time, so two triggers never send
 * the same queue twice or out of order.
 *
 * A link is whatever currently carries hub → device messages: a WebSocket
 * session, or an HTTP long-poll (protocol section 8). `deliver` resolves
 * true once the messages were written, false if they could not be (the
 * connection went away, or an HTTP device has no request open).
 */
import type { EventBus } from '../events/bus.js';
import { jsonToCbor } from '../protocol/json-cbor.js';
import type { HubMessage } from '../protocol/messages.js';
import type { StateService } from '../state/state-service.js';
import type { CommandService } from './command-service.js';

export interface DeviceLink {
  deliver(messages: HubMessage[]): Promise<boolean>;
}

type Logger = { warn(obj: object, msg: string): void };

export class DeviceOutbox {
  readonly #commands: CommandService;
  readonly #state: StateService;
  readonly #linkOf: (deviceId: string) => DeviceLink | undefined;
  readonly #log: Logger;
  /** Desired-state version each link has been given (a new link starts at none). */
  readonly #desiredSent = new WeakMap<DeviceLink, number>();
  readonly #running = new Map<string, { again: boolean; done: Promise<void> }>();
  readonly #unsubscribe: (() => void)[] = [];

  constructor(deps: { bus: EventBus; commands: CommandService; state: StateService; linkOf: (deviceId: string) => DeviceLink | undefined; logger: Logger }) {
    this.#commands = deps.commands;
    this.#state = deps.state;
    this.#linkOf = deps.linkOf;
    this.#log = deps.logger;
    const { bus } = deps;
    this.#unsubscribe.push(
      bus.on('device.online', ({ deviceId }) => void this.flush(deviceId)),
      bus.on('command.status', ({ command, previous }) => {
        if (previous === undefined && command.status === 'queued') void this.flush(command.deviceId);
      }),
      bus.on('state.desired', ({ deviceId }) => void this.flush(deviceId)),
    );
  }

  /** Sends what waits for the device, if it has a link; resolves when this round is done. */
  flush(deviceId: string): Promise<void> {
    const current = this.#running.get(deviceId);
    if (current) {
      current.again = true;
      return current.done;
    }
    const entry = { again: false, done: Promise.resolve() };
    entry.done = (async () => {
      try {
        do {
          entry.again = false;
          await this.#round(deviceId);
        } while (entry.again);
      } catch (err) {
        this.#log.warn({ err, deviceId }, 'delivery to device failed');
      } finally {
        this.#running.delete(deviceId);
      }
    })();
    this.#running.set(deviceId, entry);
    return entry.done;
  }

  close(): void {
    for (const off of this.#unsubscribe) off();
  }

  async #round(deviceId: string): Promise<void> {
    if (!this.#linkOf(deviceId)) return;
    // Resolves once each command's "sending" mark is durable (at most once across a hub crash).
    const commands = await this.#commands.takeQueued(deviceId);
    const link = this.#linkOf(deviceId);
    if (!link) return this.#commands.delivered(commands, false);
    const messages: HubMessage[] = [];
    const desired = this.#state.desiredFor(deviceId);
    const desiredNeeded = desired !== undefined && desired.version > (this.#desiredSent.get(link) ?? 0);
    if (desiredNeeded) messages.push(desired);
    for (const c of commands) messages.push({ type: 3, commandId: c.id, name: c.name, args: jsonToCbor(c.args) });
    if (messages.length === 0) return;
    const written = await link.deliver(messages);
    if (written && desiredNeeded) this.#desiredSent.set(link, desired.version);
    this.#commands.delivered(commands, written);
  }
}
