/**
 * A device's duplicate window, and its series names (the budget of
 * PULSEWIRE_MAX_NAMES_PER_DEVICE), follow the device from node to node (cluster
 * mode). Within a node the window lives in memory and, with the spool, on
 * disk (gateway/accepted-seqs.ts, storage/accepted-window-store.ts); nothing
 * goes to JetStream per message. When a node lets a device go (its connection
 * ended, or another node claimed it), it saves the window to the
 * `duplicate-windows` bucket under the epoch of its claim, after the writes
 * still in flight settled. The node that claims the device next loads it
 * before it handles the device's first TELEMETRY, so a message resent after
 * the move is answered ACK 1 (duplicate) and stored once.
 *
 * If the previous holder is still alive (whether or not it still lists the
 * device online: it releases the claim before it saves), the new holder
 * waits (bounded) for the window of that holder's claim; if it died, the window saved at the
 * device's last disconnect is the best there is: messages the dead node had
 * accepted but not acknowledged may then be stored twice (identical points
 * with the device's own timestamps collapse into one in InfluxDB).
 *
 * Names, likewise: each node keeps the names it saw with its spool (durable
 * across its restarts, storage/device-names-store.ts) and hands the device's
 * whole set on when it lets the device go; the next node adds them to what
 * its own store knows. A node that dies without letting go hands on the set
 * of the device's last disconnect, so the names it saw since count again on
 * the next node: the budget can be passed by what one session added, once.
 * A NATS message holds at most 1 MB: a set larger than HANDOVER_NAMES_BYTES
 * is handed on in part (logged), with the same effect.
 */
import type { WindowRecord } from '../stores/stores.js';
import type { Bucket } from '../stores/bucket.js';
import type { Claim } from '../presence/device-presence.js';
import type { DeviceStatus } from '../registry/device-registry.js';
import type { DeviceRuntime } from '../gateway/device-runtime.js';

type Logger = { warn(obj: object, msg: string): void };

/** Most bytes of names one handover carries (a NATS message is at most 1 MB, with the window beside them). */
export const HANDOVER_NAMES_BYTES = 512 * 1024;

/** How long a new holder waits for the previous live holder's window. */
export const HANDOVER_WAIT_MS = 3000;
const POLL_MS = 50;

export class WindowHandover {
  readonly #windows: Bucket<WindowRecord>;
  readonly #nodeId: string;
  readonly #isAlive: (node: string | undefined) => boolean;
  readonly #log: Logger;
  readonly #saving = new Set<Promise<void>>();

  constructor(deps: { windows: Bucket<WindowRecord>; nodeId: string; isAlive: (node: string | undefined) => boolean; logger: Logger }) {
    this.#windows = deps.windows;
    this.#nodeId = deps.nodeId;
    this.#isAlive = deps.isAlive;
    this.#log = deps.logger;
  }

  /**
   * The device is claimed here, `previous` is the status before the claim: if
   * another node held it last, its window is merged into this runtime's.
   * Never rejects (a window that cannot be read is logged and left out).
   */
  async adopt(runtime: DeviceRuntime, previous: DeviceStatus): Promise<void> {
    if (previous.node === undefined || previous.node === this.#nodeId || previous.epoch === undefined) return;
    const wanted = previous.epoch;
    // Online or not: a node releases its claim before it saves the window (the save waits for the device's
    // writes in flight), so a device that reconnects at once through another node finds itself offline and
    // the window not yet there. A live previous holder always saves; only a dead one never will.
    const waitForIt = this.#isAlive(previous.node);
    const deadline = Date.now() + (waitForIt ? HANDOVER_WAIT_MS : 0);
    try {
      for (;;) {
        const entry = await this.#windows.get(runtime.deviceId);
        if (entry && entry.value.epoch >= wanted) return merge(runtime, entry.value);
        if (Date.now() >= deadline) {
          if (entry) merge(runtime, entry.value);
          if (waitForIt) this.#log.warn({ deviceId: runtime.deviceId, from: previous.node }, 'duplicate window not handed over in time; a resend already accepted there may be stored twice');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } catch (err) {
      this.#log.warn({ err, deviceId: runtime.deviceId }, 'duplicate window not read');
    }
  }

  /** Saves the window of `claim` once the device's writes in flight settled; a newer epoch's window is kept. */
  save(runtime: DeviceRuntime, claim: Claim): Promise<void> {
    const saving = this.#save(runtime, claim).finally(() => this.#saving.delete(saving));
    this.#saving.add(saving);
    return saving;
  }

  /** Resolves once every save started so far is done (shutdown: before the stores close). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#saving]);
  }

  async #save(runtime: DeviceRuntime, claim: Claim): Promise<void> {
    await Promise.allSettled([...runtime.pending.values()].map((entry) => entry.outcome));
    const names = namesWithin(runtime.names, HANDOVER_NAMES_BYTES);
    if (names.length < runtime.names.size) {
      this.#log.warn({ deviceId: runtime.deviceId, names: runtime.names.size, handed: names.length }, 'series names handed over in part: too many for one NATS message');
    }
    const record: WindowRecord = { seqs: runtime.accepted.entries(), epoch: claim.epoch, names };
    try {
      for (;;) {
        const current = await this.#windows.get(runtime.deviceId);
        if (current && current.value.epoch > claim.epoch) return;
        const stored = current ? await this.#windows.update(runtime.deviceId, record, current.revision) : await this.#windows.create(runtime.deviceId, record);
        if (stored !== undefined) return;
      }
    } catch (err) {
      this.#log.warn({ err, deviceId: runtime.deviceId }, 'duplicate window not handed over');
    }
  }
}

function merge(runtime: DeviceRuntime, record: WindowRecord): void {
  for (const [seq, fingerprint] of record.seqs) if (!runtime.accepted.has(seq, fingerprint)) runtime.accepted.add(seq, fingerprint);
  if (record.names) for (const name of record.names) runtime.names.add(name);
}

function namesWithin(names: Set<string>, maxBytes: number): string[] {
  const out: string[] = [];
  let bytes = 0;
  for (const name of names) {
    bytes += name.length + 3; // JSON quotes and comma; names are ASCII
    if (bytes > maxBytes) break;
    out.push(name);
  }
  return out;
}
