/**
 * The audit log: one entry per state-changing operator call (commands,
 * desired state, jobs, the registry, keys), with who (key id and name), what
 * (action, target), how it ended (outcome, HTTP status), when and from where.
 * Entries live in the `audit` store (lmdb with one process, a JetStream
 * bucket shared by every node in a cluster) under a key that sorts newest
 * first, `<inverted ms>-<random>`, so a page is a walk from a cursor and a
 * time window is where the walk starts and stops. Each entry is also written
 * to InfluxDB (measurement `audit`, through the spool) so Grafana can show it.
 * Entries older than the retention (PULSEWIRE_AUDIT_RETENTION_MS) are pruned.
 */
import { randomBytes } from 'node:crypto';
import type { IPoint } from 'influx';
import type { Bucket } from '../stores/bucket.js';
import { auditPoint } from '../storage/schema.js';

export type AuditEntry = {
  readonly id: string;
  /** Epoch ms. */
  readonly at: number;
  readonly keyId: string;
  /** The key's name when the call was made. */
  readonly key: string;
  /** `command.create`, `device.register`, ... (the route's `x-audit`). */
  readonly action: string;
  /** What the call acted on: a device id, `device/command`, a job or key id; '' when nothing was created. */
  readonly target: string;
  /** `ok`, or the error code the call was answered with. */
  readonly outcome: string;
  readonly status: number;
  /** The caller's address (request.ip: the client's own behind a trusted proxy). */
  readonly source: string;
  /** Free text some actions add (a command's name, a new key's scope). */
  readonly detail?: string;
};

export type AuditFilter = {
  keyId?: string;
  key?: string;
  action?: string;
  target?: string;
  outcome?: string;
  /** Epoch ms, inclusive. */
  from?: number;
  /** Epoch ms, exclusive. */
  to?: number;
  limit: number;
  cursor?: string;
};

/** Keys sort newest first: this minus the time, 13 digits (good until the year 2286). */
const INVERT_MS = 9_999_999_999_999;
export const AUDIT_CURSOR = /^[0-9]{13}-[0-9a-f]{8}$/;
/** Entries one page looks at, matching or not, before it answers with a cursor to go on from. */
export const MAX_SCAN = 10_000;

type PointSink = { append(deviceId: string, points: IPoint[]): Promise<void> };
type Logger = { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

export class AuditLog {
  readonly #bucket: Bucket<AuditEntry>;
  readonly #points: PointSink | undefined;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  /** Entries of one millisecond get distinct InfluxDB timestamps (same tags, same time would overwrite). */
  #sub = 0;

  constructor(opts: { bucket: Bucket<AuditEntry>; points?: PointSink; logger?: Logger; now?: () => number }) {
    this.#bucket = opts.bucket;
    this.#points = opts.points;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
  }

  /** Stores the entry (resolves once durable) and hands its point to the spool. */
  async record(input: Omit<AuditEntry, 'id' | 'at'> & { at?: number }): Promise<AuditEntry> {
    const at = input.at ?? this.#now();
    const id = `${invert(at)}-${randomBytes(4).toString('hex')}`;
    const entry: AuditEntry = { ...input, id, at };
    await this.#bucket.put(id, entry);
    this.#sub = (this.#sub + 1) % 1000;
    this.#points?.append(entry.target, [auditPoint(entry, at * 1000 + this.#sub)]).catch((err: unknown) => {
      this.#logger?.warn({ err, auditId: id }, 'audit entry not written to InfluxDB (it is in the audit store)');
    });
    return entry;
  }

  /** Newest first; `nextCursor` when there may be more (a full page, or MAX_SCAN entries looked at). */
  async page(filter: AuditFilter): Promise<{ entries: AuditEntry[]; nextCursor: string | undefined }> {
    let after = filter.cursor;
    // Entries at or after `to` have smaller inverted times: start past all of them.
    if (filter.to !== undefined) {
      const start = `${invert(filter.to)}-ffffffff`;
      if (after === undefined || after < start) after = start;
    }
    const entries: AuditEntry[] = [];
    let scanned = 0;
    for await (const { key, value } of this.#bucket.entries(after === undefined ? {} : { after })) {
      if (filter.from !== undefined && value.at < filter.from) return { entries, nextCursor: undefined };
      scanned++;
      if (matches(value, filter)) {
        entries.push(value);
        if (entries.length >= filter.limit) return { entries, nextCursor: key as string };
      }
      if (scanned >= MAX_SCAN) return { entries, nextCursor: key as string };
    }
    return { entries, nextCursor: undefined };
  }

  /** Deletes entries from before `before` (epoch ms); how many. Oldest entries sort last. */
  async prune(before: number): Promise<number> {
    let pruned = 0;
    for await (const { key } of this.#bucket.entries({ after: `${invert(before)}-ffffffff` })) {
      if (await this.#bucket.delete(key)) pruned++;
    }
    return pruned;
  }
}

function invert(at: number): string {
  return String(INVERT_MS - Math.max(0, Math.min(INVERT_MS, Math.floor(at)))).padStart(13, '0');
}

function matches(entry: AuditEntry, filter: AuditFilter): boolean {
  return (filter.keyId === undefined || entry.keyId === filter.keyId)
    && (filter.key === undefined || entry.key === filter.key)
    && (filter.action === undefined || entry.action === filter.action)
    && (filter.target === undefined || entry.target === filter.target || entry.target.startsWith(`${filter.target}/`))
    && (filter.outcome === undefined || entry.outcome === filter.outcome);
}

/**
 * Prunes now and then every hour. Every node of a cluster does it: deleting an
 * entry twice is harmless, and an hour's entries are few. Not awaited: a large
 * first prune must not hold up the start.
 */
export function pruneAuditHourly(audit: AuditLog, retentionMs: number, logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }): NodeJS.Timeout {
  const prune = () => {
    audit.prune(Date.now() - retentionMs).then(
      (n) => { if (n > 0) logger.info({ entries: n, retentionMs }, 'audit entries past their retention pruned'); },
      (err: unknown) => logger.warn({ err }, 'audit prune failed; retried in an hour'),
    );
  };
  prune();
  const timer = setInterval(prune, 3600_000);
  timer.unref();
  return timer;
}
