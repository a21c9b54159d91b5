/**
 * The registered endpoints, over the `webhooks` bucket, with a copy in memory
 * that every node keeps current through the bucket's watch: the recorder
 * matches each event against it without a read, and the deliverer hears of
 * a pause, a resume or a deletion made on any node. Changes are
 * expected-revision updates, so an operator's PATCH and the deliverer marking
 * the endpoint failing never overwrite each other.
 */
import { randomBytes } from 'node:crypto';
import { PulsewireError } from '../errors/catalog.js';
import type { Bucket } from '../stores/bucket.js';
import { newWebhookSecret } from './signature.js';
import type { WebhookEventType, WebhookRecord } from './types.js';

export type EndpointInput = {
  url: string;
  events: WebhookEventType[];
  deviceIds?: string[];
  devicePrefix?: string;
  description?: string;
};

const UPDATE_ATTEMPTS = 20;

export class EndpointStore {
  readonly #bucket: Bucket<WebhookRecord>;
  readonly #byId = new Map<string, WebhookRecord>();
  readonly #listeners = new Set<(id: string, record: WebhookRecord | undefined) => void>();
  readonly #maxEndpoints: number;
  readonly #now: () => number;
  #stopWatching: (() => void) | undefined;

  constructor(deps: { bucket: Bucket<WebhookRecord>; maxEndpoints: number; now?: () => number }) {
    this.#bucket = deps.bucket;
    this.#maxEndpoints = deps.maxEndpoints;
    this.#now = deps.now ?? Date.now;
  }

  /** Loads every endpoint and follows changes from then on. */
  async open(): Promise<void> {
    this.#stopWatching = this.#bucket.watch((change) => {
      if (typeof change.key !== 'string') return;
      this.#set(change.key, change.value);
    });
    for await (const entry of this.#bucket.entries()) {
      if (typeof entry.key === 'string') this.#set(entry.key, entry.value);
    }
  }

  close(): void {
    this.#stopWatching?.();
  }

  /** Calls `listener` with every change (undefined: deleted), from any node. */
  onChange(listener: (id: string, record: WebhookRecord | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The endpoints as last known here (a copy of the list, the records shared: do not change them). */
  all(): WebhookRecord[] {
    return [...this.#byId.values()];
  }

  cached(id: string): WebhookRecord | undefined {
    return this.#byId.get(id);
  }

  async get(id: string): Promise<WebhookRecord> {
    const entry = await this.#bucket.get(id);
    if (!entry) throw new PulsewireError('PW_ERR_WEBHOOK_NOT_FOUND', id);
    return entry.value;
  }

  /** Whether the bucket holds `id` (not only this node's copy). */
  async exists(id: string): Promise<boolean> {
    return (await this.#bucket.get(id)) !== undefined;
  }

  async create(input: EndpointInput): Promise<WebhookRecord> {
    if (this.#byId.size >= this.#maxEndpoints) throw new PulsewireError('PW_ERR_WEBHOOKS_FULL', `${this.#byId.size} registered`);
    const now = this.#now();
    const record: WebhookRecord = {
      id: `wh_${randomBytes(8).toString('hex')}`, ...clean(input), secret: newWebhookSecret(), createdAt: now, updatedAt: now, paused: false,
    };
    if ((await this.#bucket.create(record.id, record)) === undefined) throw new PulsewireError('PW_ERR_INTERNAL', 'webhook id collision');
    this.#set(record.id, record);
    return record;
  }

  /** Replaces the fields given; `null` removes a filter or the description. */
  update(id: string, patch: Partial<{ [K in keyof EndpointInput]: EndpointInput[K] | null }>): Promise<WebhookRecord> {
    return this.#change(id, (record) => {
      const next: WebhookRecord = { ...record, updatedAt: this.#now() };
      for (const field of ['url', 'events', 'deviceIds', 'devicePrefix', 'description'] as const) {
        if (!(field in patch)) continue;
        const value = patch[field];
        if (value === null || value === undefined) delete next[field as 'deviceIds'];
        else (next as Record<string, unknown>)[field] = value;
      }
      return next;
    });
  }

  pause(id: string, reason: string): Promise<WebhookRecord> {
    const now = this.#now();
    return this.#change(id, (record) => (record.paused ? undefined : { ...record, paused: true, pausedReason: reason, pausedAt: now, updatedAt: now }));
  }

  /** Starts delivery again and forgets the failures that paused it. */
  resume(id: string): Promise<WebhookRecord> {
    return this.#change(id, (record) => {
      const { pausedReason: _r, pausedAt: _a, failingSince: _f, ...rest } = record;
      return { ...rest, paused: false, updatedAt: this.#now() };
    });
  }

  /** Notes a failed attempt: when it started failing (kept from the first failure) and the latest reason. */
  markFailing(id: string, reason: string, at: number): Promise<WebhookRecord> {
    return this.#change(id, (record) => (record.failingSince !== undefined && record.lastFailure === reason
      ? undefined
      : { ...record, failingSince: record.failingSince ?? at, lastFailure: reason }));
  }

  markHealthy(id: string): Promise<WebhookRecord> {
    return this.#change(id, (record) => {
      if (record.failingSince === undefined) return undefined;
      const { failingSince: _f, ...rest } = record;
      return rest;
    });
  }

  async delete(id: string): Promise<void> {
    if (!(await this.#bucket.delete(id))) throw new PulsewireError('PW_ERR_WEBHOOK_NOT_FOUND', id);
    this.#set(id, undefined);
  }

  /** Applies `change` with an expected-revision update, again on a race; `change` returning undefined means nothing to write. */
  async #change(id: string, change: (record: WebhookRecord) => WebhookRecord | undefined): Promise<WebhookRecord> {
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
      const entry = await this.#bucket.get(id);
      if (!entry) throw new PulsewireError('PW_ERR_WEBHOOK_NOT_FOUND', id);
      const next = change(entry.value);
      if (next === undefined) return entry.value;
      if ((await this.#bucket.update(id, next, entry.revision)) !== undefined) {
        this.#set(id, next);
        return next;
      }
    }
    throw new PulsewireError('PW_ERR_INTERNAL', `webhook ${id} changed ${UPDATE_ATTEMPTS} times while being updated`);
  }

  #set(id: string, record: WebhookRecord | undefined): void {
    if (record) this.#byId.set(id, record);
    else this.#byId.delete(id);
    for (const listener of this.#listeners) listener(id, record);
  }
}

function clean(input: EndpointInput): EndpointInput {
  return {
    url: input.url, events: [...new Set(input.events)],
    ...(input.deviceIds !== undefined ? { deviceIds: [...new Set(input.deviceIds)] } : {}),
    ...(input.devicePrefix !== undefined ? { devicePrefix: input.devicePrefix } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
  };
}
