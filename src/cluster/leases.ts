/**
 * Work that must happen once per cluster runs on the node holding its lease:
 * re-arming command deadlines, rolling out jobs, marking a lost node's
 * devices offline, pruning. With one process there is nobody to share with,
 * so every lease is granted at once (no bucket).
 *
 * In a cluster a lease is a record in the `leases` bucket that its holder
 * renews every third of the lease time. Expiry is judged by the observer's
 * own clock, not by a time written in the record: a contender takes the
 * lease over once it has seen the record's revision unchanged for a whole
 * lease time, so clocks that disagree between machines do not matter (nats-
 * server 2.9 has no per-message TTL to do it for us). Taking over is an
 * expected-revision update, so of two contenders exactly one wins. A holder
 * that cannot renew for a lease time (NATS gone) gives the lease up, since
 * someone else may hold it by then.
 */
import type { Bucket, Entry } from '../stores/bucket.js';

export type LeaseRecord = { holder: string; since: number; renewedAt: number };

export interface LeaseTask {
  /** This node holds the lease now; resolves once the work is set up. */
  acquired(): Promise<void> | void;
  /** This node no longer holds it (lost, or closing): stop the work. */
  lost(): void;
}

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

type Held = {
  task: LeaseTask;
  /** The revision this node last wrote, while it holds the lease. */
  revision: number | undefined;
  lastRenewedAt: number;
  /** When this node took it (wall clock, for operators reading the record). */
  since: number;
  /** The revision last seen held by someone else, and since when (this node's clock). */
  seen: { revision: number; since: number } | undefined;
};

export class Leases {
  readonly #bucket: Bucket<LeaseRecord> | undefined;
  readonly #nodeId: string;
  readonly #leaseMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #tasks = new Map<string, Held>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deps: { bucket: Bucket<LeaseRecord> | undefined; nodeId: string; leaseMs: number; logger: Logger; now?: () => number }) {
    this.#bucket = deps.bucket;
    this.#nodeId = deps.nodeId;
    this.#leaseMs = deps.leaseMs;
    this.#log = deps.logger;
    this.#now = deps.now ?? (() => performance.now());
  }

  /** Runs `task` whenever this node holds lease `name`; resolves after the first attempt to take it. */
  async hold(name: string, task: LeaseTask): Promise<void> {
    const held: Held = { task, revision: undefined, lastRenewedAt: 0, since: 0, seen: undefined };
    this.#tasks.set(name, held);
    if (!this.#bucket) {
      held.revision = 0;
      await task.acquired();
      return;
    }
    await this.#tick(name, held);
    this.#timer ??= setInterval(() => {
      for (const [n, h] of this.#tasks) void this.#tick(n, h);
    }, Math.max(50, Math.floor(this.#leaseMs / 3)));
    this.#timer.unref();
  }

  holds(name: string): boolean {
    return this.#tasks.get(name)?.revision !== undefined;
  }

  /** Stops every task and hands the leases back, so another node takes them at once. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const [name, held] of this.#tasks) {
      if (held.revision === undefined) continue;
      const revision = held.revision;
      this.#drop(name, held);
      await this.#bucket?.delete(name, revision).catch(() => false);
    }
  }

  async #tick(name: string, held: Held): Promise<void> {
    if (this.#closed) return;
    const bucket = this.#bucket!;
    const now = this.#now();
    try {
      if (held.revision !== undefined) {
        const renewed = await bucket.update(name, { holder: this.#nodeId, since: held.since, renewedAt: Date.now() }, held.revision);
        if (renewed === undefined) return this.#lose(name, held, 'taken by another node');
        held.revision = renewed;
        held.lastRenewedAt = now;
        return;
      }
      const entry = await bucket.get(name);
      if (!entry) return await this.#take(name, held, () => bucket.create(name, this.#record()));
      if (this.#expired(entry, held, now)) await this.#take(name, held, () => bucket.update(name, this.#record(), entry.revision));
    } catch (err) {
      // NATS unreachable: keep the lease only as long as nobody else could have taken it.
      if (held.revision !== undefined && now - held.lastRenewedAt > this.#leaseMs) this.#lose(name, held, `not renewed: ${(err as Error).message}`);
    }
  }

  #expired(entry: Entry<LeaseRecord>, held: Held, now: number): boolean {
    if (entry.value.holder === this.#nodeId) return true; // an earlier run of this node left it
    if (held.seen?.revision !== entry.revision) {
      held.seen = { revision: entry.revision, since: now };
      return false;
    }
    return now - held.seen.since >= this.#leaseMs;
  }

  async #take(name: string, held: Held, write: () => Promise<number | undefined>): Promise<void> {
    const revision = await write();
    if (revision === undefined || this.#closed) return; // another node was faster
    held.revision = revision;
    held.lastRenewedAt = this.#now();
    held.since = Date.now();
    held.seen = undefined;
    this.#log.info({ lease: name, node: this.#nodeId }, 'lease acquired');
    try {
      await held.task.acquired();
    } catch (err) {
      this.#log.warn({ err, lease: name }, 'work under lease failed to start');
    }
  }

  #lose(name: string, held: Held, why: string): void {
    this.#log.warn({ lease: name, node: this.#nodeId, why }, 'lease lost');
    this.#drop(name, held);
  }

  #drop(_name: string, held: Held): void {
    held.revision = undefined;
    held.task.lost();
  }

  #record(): LeaseRecord {
    return { holder: this.#nodeId, since: Date.now(), renewedAt: Date.now() };
  }
}
