/**
 * Turns the bus's events into webhook events in the outbox of every endpoint
 * that wants them. It runs on every node and records only what arose on its
 * own node: in a cluster the bus bridge feeds other nodes' events into this
 * bus too, and those were recorded where they happened (`isRemote`), so each
 * event enters each outbox once. The append is not awaited by the bus: a
 * slow store never slows the gateway that emitted the event.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { EventBus, HubEvents } from '../events/bus.js';
import type { EndpointStore } from './endpoint-store.js';
import { SOURCE_EVENTS, toOccurrence, wants, type SourceEvent } from './events.js';
import type { WebhookOutbox } from './outbox.js';
import type { WebhookEvent } from './types.js';

type Logger = { warn(obj: object, msg: string): void };

/** Repeats of a once-only event (a job's final progress counted twice) are dropped within this many. */
const REMEMBERED_ONCE = 4096;

export class WebhookRecorder {
  readonly #deps: { bus: EventBus; endpoints: EndpointStore; outbox: WebhookOutbox; isRemote: (payload: object) => boolean; logger: Logger; now: () => number };
  readonly #off: (() => void)[] = [];
  readonly #once = new Set<string>();
  readonly #appends = new Set<Promise<void>>();
  #recorded = 0;

  constructor(deps: { bus: EventBus; endpoints: EndpointStore; outbox: WebhookOutbox; isRemote?: (payload: object) => boolean; logger: Logger; now?: () => number }) {
    this.#deps = { ...deps, isRemote: deps.isRemote ?? (() => false), now: deps.now ?? Date.now };
  }

  start(): void {
    for (const event of SOURCE_EVENTS) {
      this.#off.push(this.#deps.bus.on(event, (payload) => this.#record(event, payload)));
    }
  }

  /** Events appended to some outbox since start (one per event and endpoint). */
  get recorded(): number {
    return this.#recorded;
  }

  /** Stops listening and waits for the appends in flight. */
  async stop(): Promise<void> {
    for (const off of this.#off.splice(0)) off();
    await Promise.allSettled([...this.#appends]);
  }

  #record<K extends SourceEvent>(event: K, payload: HubEvents[K]): void {
    if (this.#deps.isRemote(payload)) return;
    const now = this.#deps.now();
    const occurrence = toOccurrence(event, payload, now);
    if (!occurrence) return;
    const targets = this.#deps.endpoints.all().filter((endpoint) => wants(endpoint, occurrence));
    if (targets.length === 0) return;
    if (occurrence.once !== undefined) {
      if (this.#once.has(occurrence.once)) return;
      this.#once.add(occurrence.once);
      if (this.#once.size > REMEMBERED_ONCE) this.#once.delete(this.#once.values().next().value!);
    }
    const webhookEvent: WebhookEvent = { id: eventId(occurrence.once), type: occurrence.type, time: new Date(occurrence.at).toISOString(), data: occurrence.data };
    for (const endpoint of targets) {
      const append = this.#deps.outbox.append(endpoint.id, webhookEvent).then(
        () => { this.#recorded++; },
        (err: unknown) => this.#deps.logger.warn({ err, endpoint: endpoint.id, event: webhookEvent.id, type: webhookEvent.type }, 'webhook event not queued'),
      ).finally(() => this.#appends.delete(append));
      this.#appends.add(append);
    }
  }
}

/**
 * A new random id, or for a once-only event (a command's end, a job's) one derived from what it is about: should two
 * nodes both record it (a job cancelled on one while its runner on another counts it finished), receivers still see
 * one id and dedupe it.
 */
function eventId(once: string | undefined): string {
  const hex = once === undefined ? randomBytes(12).toString('hex') : createHash('sha256').update(once).digest('hex').slice(0, 24);
  return `evt_${hex}`;
}
