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
 * with one outcome per message: true once it was written or may have been
 * (at most once: such a command is sent, and never goes out again), false
 * only when it certainly was not (the connection went away first, or an
 * HTTP device has no request open); only those go back to the queue. One
 * outcome per message, not per batch, so a frame that fails after the
 * first ones were written does not send those twice.
 */
import type { EventBus } from '../events/bus.js';
import { jsonToCbor } from '../protocol/json-cbor.js';
import type { HubMessage } from '../protocol/messages.js';
import type { StateService } from '../state/state-service.js';
import type { CommandService } from './command-service.js';

export interface DeviceLink {
  deliver(messages: HubMessage[]): Promise<boolean[]>;
}

const none = (count: number): boolean[] => new Array<boolean>(count).fill(false);

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
    const [commands, desired] = await Promise.all([
      this.#commands.takeQueued(deviceId),
      // Not readable now: the commands still go; DESIRED follows on the next round (the next change or connect).
      this.#state.desiredFor(deviceId).catch((err: unknown) => {
        this.#log.warn({ err, deviceId }, 'desired state not read; not sent this round');
        return undefined;
      }),
    ]);
    const link = this.#linkOf(deviceId);
    if (!link) return this.#commands.delivered(commands, none(commands.length));
    const messages: HubMessage[] = [];
    const desiredNeeded = desired !== undefined && desired.version > (this.#desiredSent.get(link) ?? 0);
    if (desiredNeeded) messages.push(desired);
    for (const c of commands) messages.push({ type: 3, commandId: c.id, name: c.name, args: jsonToCbor(c.args) });
    if (messages.length === 0) return;
    let written: boolean[];
    try {
      written = await link.deliver(messages);
    } catch (err) {
      // Thrown before anything was handed over (an encoding error): nothing went out.
      this.#log.warn({ err, deviceId }, 'messages for the device not written');
      written = none(messages.length);
    }
    if (desiredNeeded && written[0]) this.#desiredSent.set(link, desired.version);
    await this.#commands.delivered(commands, desiredNeeded ? written.slice(1) : written);
  }
}
