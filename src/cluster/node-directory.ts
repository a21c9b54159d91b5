/**
 * Which hub nodes are alive. Each node beats: it rewrites its record in the
 * `nodes` bucket every third of the node lease. Every node watches the bucket
 * and judges liveness by its own clock, like the leases: a node whose record
 * has not changed for a whole lease is gone, and so is one that deleted its
 * record on a graceful stop. With one process there is no bucket: this node
 * is the only one alive, and any other node named in a record is an earlier
 * run of the hub.
 */
import type { Bucket } from '../stores/bucket.js';

export type NodeRecord = {
  /** Wall-clock times, for operators reading the bucket. */
  startedAt: number;
  beatAt: number;
  /** Where the node answers HTTP (for operators). */
  address?: string;
};

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

type Seen = { revision: number; since: number };

export class NodeDirectory {
  readonly nodeId: string;
  readonly #bucket: Bucket<NodeRecord> | undefined;
  readonly #leaseMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #startedAt = Date.now();
  /** Other nodes' records: the last revision and when this node first saw it. */
  readonly #seen = new Map<string, Seen>();
  #revision: number | undefined;
  #address: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unwatch: (() => void) | undefined;
  #lastBeatOk = 0;

  constructor(deps: { bucket: Bucket<NodeRecord> | undefined; nodeId: string; leaseMs: number; logger: Logger; now?: () => number }) {
    this.nodeId = deps.nodeId;
    this.#bucket = deps.bucket;
    this.#leaseMs = deps.leaseMs;
    this.#log = deps.logger;
    this.#now = deps.now ?? (() => performance.now());
  }

  get leaseMs(): number {
    return this.#leaseMs;
  }

  /** Announces this node and starts beating; loads the other nodes' records. */
  async start(address?: string): Promise<void> {
    this.#address = address;
    const bucket = this.#bucket;
    if (!bucket) return;
    this.#unwatch = bucket.watch((change) => {
      const node = change.key as string;
      if (node === this.nodeId) return;
      if (change.value === undefined) this.#seen.delete(node);
      else this.#seen.set(node, { revision: change.revision, since: this.#now() });
    });
    const now = this.#now();
    for await (const entry of bucket.entries()) {
      const node = entry.key as string;
      if (node !== this.nodeId && !this.#seen.has(node)) this.#seen.set(node, { revision: entry.revision, since: now });
    }
    await this.#beat();
    this.#timer = setInterval(() => void this.#beat(), Math.max(50, Math.floor(this.#leaseMs / 3)));
    this.#timer.unref();
  }

  /** Whether `node` is alive as far as this node can tell. */
  isAlive(node: string | undefined): boolean {
    if (node === this.nodeId) return true;
    if (node === undefined || !this.#bucket) return false;
    const seen = this.#seen.get(node);
    return seen !== undefined && this.#now() - seen.since < this.#leaseMs;
  }

  /** Other nodes whose records this node knows, alive or not (the reaper's candidates). */
  known(): string[] {
    return [...this.#seen.keys()];
  }

  /** Forgets a gone node's record (once its devices were released), if it did not beat again. */
  async forget(node: string): Promise<void> {
    const seen = this.#seen.get(node);
    if (!seen || !this.#bucket) return;
    if (await this.#bucket.delete(node, seen.revision)) this.#seen.delete(node);
  }

  /** True while this node's own beats reach the bucket (false: NATS is unreachable). */
  get beating(): boolean {
    return !this.#bucket || this.#now() - this.#lastBeatOk < this.#leaseMs;
  }

  /** Stops beating and deletes this node's record: a graceful leave, so nobody reaps its devices. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#unwatch?.();
    if (this.#revision !== undefined) await this.#bucket?.delete(this.nodeId).catch(() => false);
  }

  async #beat(): Promise<void> {
    const record: NodeRecord = { startedAt: this.#startedAt, beatAt: Date.now(), ...(this.#address ? { address: this.#address } : {}) };
    try {
      this.#revision = await this.#bucket!.put(this.nodeId, record);
      this.#lastBeatOk = this.#now();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, node: this.nodeId }, 'node heartbeat not written');
    }
  }
}
