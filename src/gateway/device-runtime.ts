/**
 * What the hub remembers about a device across its connections while the
 * process runs: the accepted-seq window (so resends after a reconnect are
 * recognised; restored from the spool's durable copy on first sight, so
 * also after a restart), writes still in progress by seq, the set of series
 * names (for ACK code 5; loaded from its durable copy at the first message
 * that needs it), counters, and the session that currently owns it.
 */
import { SeriesKeys } from '../storage/reading-lines.js';
import { AcceptedSeqs } from './accepted-seqs.js';
import type { DeviceBuckets } from './device-rates.js';

export type AckOutcome = { code: number; reason?: string };

export interface DeviceSessionHandle {
  readonly deviceId: string;
  readonly connectedAt: number;
  readonly remoteAddress: string;
  /** Rank of the connection in the hub's accept order (WebSocket sessions only): the older of two loses. */
  readonly acceptOrder?: number | undefined;
  /** Writes hub → device messages (COMMAND, DESIRED); per message, true once it may have reached the device, false if it certainly did not (see DeviceLink). */
  deliver(messages: import('../protocol/messages.js').HubMessage[]): Promise<boolean[]>;
  /** The presence claim this session holds, once written (status-recorder.ts); undefined if it could not be. */
  claim?: Promise<import('../presence/device-presence.js').Claim | undefined>;
  /** Ends the session from the hub side with a close code and reason. */
  end(closeCode: number, reason: string, offlineReason: import('../events/bus.js').OfflineReason): void;
}

export class DeviceRuntime {
  readonly deviceId: string;
  readonly accepted = new AcceptedSeqs();
  /** A resend that arrives while the first copy is still being written waits for it. */
  readonly pending = new Map<number, { fingerprint: number; outcome: Promise<AckOutcome> }>();
  readonly #loadNames: (deviceId: string) => Iterable<string>;
  #names: Set<string> | undefined;
  #seriesKeys: SeriesKeys | undefined;
  /** Messages since this process first saw the device; `messagesInBefore` holds the persisted total. */
  messagesIn = 0;
  messagesInBefore: number | undefined;
  readingsIn = 0;
  lastSeen = 0;
  /** Its message and reading rate buckets (device-rates.ts), made at its first message. */
  rates: DeviceBuckets | undefined = undefined;
  session: DeviceSessionHandle | undefined;
  /** Cluster mode: TELEMETRY waits for this while the window another node handed over is loaded (cluster/window-handover.ts). */
  windowReady: Promise<void> | undefined = undefined;
  /** Since when (ms) nothing has held or asked for this runtime; see DeviceRuntimes.forgetIdle. */
  idleSince = Date.now();

  constructor(deviceId: string, loadNames: (deviceId: string) => Iterable<string> = () => []) {
    this.deviceId = deviceId;
    this.#loadNames = loadNames;
  }

  /** The device's distinct series names, durable ones included (storage/device-names-store.ts). */
  get names(): Set<string> {
    return (this.#names ??= new Set(this.#loadNames(this.deviceId)));
  }

  /** Its series keys in line protocol (storage/reading-lines.ts), made at its first reading. */
  get seriesKeys(): SeriesKeys {
    return (this.#seriesKeys ??= new SeriesKeys(this.deviceId));
  }

  get messagesInTotal(): number {
    return (this.messagesInBefore ?? 0) + this.messagesIn;
  }
}

/**
 * Every device's runtime, by id. A runtime whose device has been gone for
 * long is forgotten (forgetIdle): a fleet whose devices come and go would
 * otherwise keep one per id ever seen, with its window and names, for the
 * life of the process. What must outlive it is durable and comes back with
 * the next one: the duplicate window and the names from the spool, the
 * message count from the device's presence record.
 */
export class DeviceRuntimes {
  readonly #byId = new Map<string, DeviceRuntime>();
  readonly #loadAccepted: (deviceId: string) => Iterable<[seq: number, fingerprint: number]>;
  readonly #loadNames: (deviceId: string) => Iterable<string>;
  #online = 0;
  #forgotten = 0;

  /**
   * `loadAccepted` restores a device's durable window (oldest first) when this process first sees it;
   * `loadNames` its series names, when first needed.
   */
  constructor(loadAccepted: (deviceId: string) => Iterable<[number, number]> = () => [], loadNames: (deviceId: string) => Iterable<string> = () => []) {
    this.#loadAccepted = loadAccepted;
    this.#loadNames = loadNames;
  }

  get(deviceId: string): DeviceRuntime {
    let runtime = this.#byId.get(deviceId);
    if (!runtime) {
      runtime = new DeviceRuntime(deviceId, this.#loadNames);
      for (const [seq, fingerprint] of this.#loadAccepted(deviceId)) runtime.accepted.add(seq, fingerprint);
      this.#byId.set(deviceId, runtime);
    }
    runtime.idleSince = Date.now();
    return runtime;
  }

  peek(deviceId: string): DeviceRuntime | undefined {
    return this.#byId.get(deviceId);
  }

  /** Whether a connection of this node holds the device right now. */
  isConnectedHere(deviceId: string): boolean {
    return this.#byId.get(deviceId)?.session !== undefined;
  }

  /**
   * Installs a session as the device's current one and returns the one it
   * replaces. `runtime` is the one the session was made with: should it have
   * been forgotten while the session waited to take over, it is put back,
   * so the session and the map never disagree.
   */
  attach(session: DeviceSessionHandle, runtime: DeviceRuntime = this.get(session.deviceId)): DeviceSessionHandle | undefined {
    if (this.#byId.get(session.deviceId) !== runtime) this.#byId.set(session.deviceId, runtime);
    const previous = runtime.session;
    runtime.session = session;
    if (!previous) this.#online++;
    return previous;
  }

  /** Detaches a session if it is still the current one; false when a newer one took over. */
  detach(session: DeviceSessionHandle): boolean {
    const runtime = this.#byId.get(session.deviceId);
    if (!runtime || runtime.session !== session) return false;
    runtime.session = undefined;
    runtime.idleSince = Date.now();
    this.#online--;
    return true;
  }

  /**
   * Forgets the runtimes of devices that have had no connection, no write in
   * flight and no handover pending for `idleMs`; returns their ids (the
   * caller drops what else it keeps per device).
   */
  forgetIdle(idleMs: number, now = Date.now()): string[] {
    const gone: string[] = [];
    for (const [deviceId, runtime] of this.#byId) {
      if (runtime.session || runtime.pending.size > 0 || runtime.windowReady !== undefined || now - runtime.idleSince < idleMs) continue;
      this.#byId.delete(deviceId);
      gone.push(deviceId);
    }
    this.#forgotten += gone.length;
    return gone;
  }

  /** Runtimes held in memory, and forgotten since start (metrics). */
  get size(): number {
    return this.#byId.size;
  }

  get forgotten(): number {
    return this.#forgotten;
  }

  forget(deviceId: string): void {
    const runtime = this.#byId.get(deviceId);
    if (runtime?.session) this.#online--;
    this.#byId.delete(deviceId);
  }

  get onlineCount(): number {
    return this.#online;
  }

  *sessions(): IterableIterator<DeviceSessionHandle> {
    for (const runtime of this.#byId.values()) if (runtime.session) yield runtime.session;
  }
}
