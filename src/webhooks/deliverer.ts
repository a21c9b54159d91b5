/**
 * Delivers each endpoint's outbox, in order, one event at a time: the next
 * event goes only once the one before it was answered 2xx or given up, which
 * is what "in order per endpoint" costs (one request in flight per endpoint).
 * Each endpoint has its own loop, connection and deadline
 * (PULSEWIRE_WEBHOOK_TIMEOUT_MS), so a slow or dead receiver holds up only
 * its own queue; nothing here runs on the path of a device message.
 *
 * A failed attempt is retried after a delay that doubles from
 * PULSEWIRE_WEBHOOK_BACKOFF_MS up to PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS, with
 * jitter (half the delay fixed, half random, so endpoints that failed together
 * do not retry together). An event still failing PULSEWIRE_WEBHOOK_RETRY_FOR_MS
 * after it was queued moves to the endpoint's failed list, and the next one is
 * tried. An endpoint whose every attempt failed for PULSEWIRE_WEBHOOK_PAUSE_AFTER_MS
 * is paused with the reason; what it had queued waits for its resume.
 *
 * It runs under the `webhooks` lease (cluster/leases.ts): with one process at
 * once; in a cluster on one node at a time, so each event is delivered by one
 * node. A node that loses the lease stops at once (a request in flight is
 * abandoned, and the next holder sends that event again: at least once).
 */
import type { Agent } from 'node:http';
import type { WebhookConfig } from '../config/index.js';
import type { LeaseTask } from '../cluster/leases.js';
import type { Resolve } from './address-policy.js';
import type { EndpointStore } from './endpoint-store.js';
import type { WebhookOutbox } from './outbox.js';
import { endpointAgent, postEvent } from './post.js';
import type { WebhookRecord } from './types.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

/** How often an idle endpoint looks at its queue without being woken (a watch missed in a NATS outage). */
const IDLE_POLL_MS = 5000;

/**
 * How long an event queued for an endpoint nobody knows waits before it is dropped. Such an event was
 * appended as its endpoint was being deleted (an append in flight, or another node that had not yet heard of
 * the deletion); nothing would ever deliver or delete it. The wait covers the other case, an endpoint just
 * created on another node whose record has not reached this one yet.
 */
export const ORPHAN_GRACE_MS = 60_000;

type Worker = {
  readonly id: string;
  /** The URL its connection pool was made for; another URL gets a new worker. */
  readonly url: string;
  readonly abort: AbortController;
  readonly agent: Agent;
  /** Set when an event was appended since the loop last looked. */
  dirty: boolean;
  wake: (() => void) | undefined;
};

export type DelivererDeps = {
  endpoints: EndpointStore;
  outbox: WebhookOutbox;
  config: WebhookConfig;
  /** Undefined: PULSEWIRE_WEBHOOK_ALLOW_PRIVATE, any address goes. */
  resolve: Resolve | undefined;
  logger: Logger;
  now?: () => number;
  random?: () => number;
  /** ORPHAN_GRACE_MS unless a test says otherwise. */
  orphanGraceMs?: number;
};

export class WebhookDeliverer implements LeaseTask {
  readonly #deps: DelivererDeps;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #workers = new Map<string, Worker>();
  readonly #off: (() => void)[] = [];
  /** Endpoint ids with events but no record, each checked again after the grace. */
  readonly #orphanChecks = new Map<string, NodeJS.Timeout>();
  #active = false;
  #delivered = 0;
  #attemptsFailed = 0;
  #gaveUp = 0;

  constructor(deps: DelivererDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
  }

  get stats(): { endpoints: number; delivered: number; attemptsFailed: number; gaveUp: number } {
    return { endpoints: this.#workers.size, delivered: this.#delivered, attemptsFailed: this.#attemptsFailed, gaveUp: this.#gaveUp };
  }

  acquired(): void {
    if (this.#active) return;
    this.#active = true;
    this.#off.push(this.#deps.endpoints.onChange((id, record) => this.#sync(id, record)));
    this.#off.push(this.#deps.outbox.onAppended((id) => this.#appended(id)));
    for (const endpoint of this.#deps.endpoints.all()) this.#sync(endpoint.id, endpoint);
  }

  lost(): void {
    this.#active = false;
    for (const off of this.#off.splice(0)) off();
    for (const id of [...this.#workers.keys()]) this.#stop(id);
    for (const timer of this.#orphanChecks.values()) clearTimeout(timer);
    this.#orphanChecks.clear();
  }

  /** Delay before attempt `attempts + 1` (attempts >= 1): doubling, capped, half of it random. */
  backoff(attempts: number): number {
    const { backoffMs, backoffMaxMs } = this.#deps.config;
    const full = Math.min(backoffMaxMs, backoffMs * 2 ** Math.min(attempts - 1, 30));
    return full / 2 + this.#random() * (full / 2);
  }

  #sync(id: string, record: WebhookRecord | undefined): void {
    if (!this.#active) return;
    const worker = this.#workers.get(id);
    if (!record || record.paused) this.#stop(id);
    else if (!worker) this.#start(id, record.url);
    else if (worker.url !== record.url) {
      // A request in flight to the old URL is abandoned and sent again to the new one (at least once).
      this.#stop(id);
      this.#start(id, record.url);
    } else this.#wake(id);
  }

  #start(id: string, url: string): void {
    const worker: Worker = { id, url, abort: new AbortController(), agent: endpointAgent(url), dirty: true, wake: undefined };
    this.#workers.set(id, worker);
    void this.#run(worker).catch((err: unknown) => this.#deps.logger.warn({ err, endpoint: id }, 'webhook delivery loop ended'))
      .finally(() => {
        worker.agent.destroy();
        if (this.#workers.get(id) === worker) this.#workers.delete(id);
      });
  }

  #stop(id: string): void {
    const worker = this.#workers.get(id);
    if (!worker) return;
    this.#workers.delete(id);
    worker.abort.abort();
    worker.wake?.();
  }

  #appended(id: string): void {
    if (this.#workers.has(id) || this.#deps.endpoints.cached(id) !== undefined) {
      this.#wake(id);
      return;
    }
    if (this.#orphanChecks.has(id)) return;
    const timer = setTimeout(() => {
      this.#orphanChecks.delete(id);
      void this.#dropIfOrphan(id).catch((err: unknown) => this.#deps.logger.warn({ err, endpoint: id }, 'webhook events of a deleted endpoint not dropped'));
    }, this.#deps.orphanGraceMs ?? ORPHAN_GRACE_MS);
    timer.unref();
    this.#orphanChecks.set(id, timer);
  }

  async #dropIfOrphan(id: string): Promise<void> {
    if (!this.#active || this.#deps.endpoints.cached(id) !== undefined || (await this.#deps.endpoints.exists(id))) return;
    await this.#deps.outbox.dropEndpoint(id);
    this.#deps.logger.info({ endpoint: id }, 'dropped webhook events queued for a deleted endpoint');
  }

  #wake(id: string): void {
    const worker = this.#workers.get(id);
    if (!worker) return;
    worker.dirty = true;
    worker.wake?.();
  }

  async #run(worker: Worker): Promise<void> {
    const { endpoints, outbox, config, logger } = this.#deps;
    const stopped = () => worker.abort.signal.aborted;
    while (!stopped()) {
      worker.dirty = false;
      let head;
      try {
        head = await outbox.head(worker.id);
      } catch (err) {
        logger.warn({ err, endpoint: worker.id }, 'webhook outbox not readable; trying again');
        await this.#sleep(worker, config.backoffMs, false);
        continue;
      }
      if (stopped()) return;
      if (!head) {
        if (!worker.dirty) await this.#sleep(worker, IDLE_POLL_MS, true);
        continue;
      }
      const endpoint = endpoints.cached(worker.id);
      if (!endpoint || endpoint.paused || endpoint.url !== worker.url) return;
      const resolve = this.#deps.resolve;
      const attempt = await postEvent(endpoint.url, endpoint.secret, head.value.event, {
        timeoutMs: config.timeoutMs, resolve, agent: worker.agent, signal: worker.abort.signal, now: this.#now,
      });
      if (stopped()) return;
      try {
        if (attempt.ok) {
          await outbox.delivered(head);
          this.#delivered++;
          if (endpoint.failingSince !== undefined) await endpoints.markHealthy(worker.id);
          continue;
        }
        this.#attemptsFailed++;
        const now = this.#now();
        const value = await outbox.attemptFailed(head, attempt.reason, now);
        const failing = await endpoints.markFailing(worker.id, attempt.reason, now);
        if (now - value.queuedAt >= config.retryForMs) {
          await outbox.giveUp(head, value, `retries ran out after ${value.attempts} attempts; last: ${attempt.reason}`, now);
          this.#gaveUp++;
          logger.warn({ endpoint: worker.id, event: value.event.id, attempts: value.attempts, reason: attempt.reason }, 'webhook event moved to the failed list');
        }
        const givenUp = now - value.queuedAt >= config.retryForMs;
        if (now - (failing.failingSince ?? now) >= config.pauseAfterMs) {
          const reason = `every attempt failed for ${Math.round((now - failing.failingSince!) / 1000)} s; last: ${attempt.reason}`;
          await endpoints.pause(worker.id, reason);
          logger.warn({ endpoint: worker.id, reason }, 'webhook endpoint paused');
          return;
        }
        // The next event after one given up is tried at once: one queued as long ago goes to the failed list
        // after its one attempt, so a long-dead receiver's queue drains at the pace it fails, not one per backoff.
        if (!givenUp) await this.#sleep(worker, this.backoff(value.attempts), false);
      } catch (err) {
        logger.warn({ err, endpoint: worker.id }, 'webhook delivery state not stored; trying again');
        await this.#sleep(worker, config.backoffMs, false);
      }
    }
  }

  /** Waits `ms`, or less when stopped, or (`wakeable`) when an event is appended for this endpoint. */
  #sleep(worker: Worker, ms: number, wakeable: boolean): Promise<void> {
    if (worker.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        worker.wake = undefined;
        resolve();
      }
      worker.wake = () => {
        if (wakeable || worker.abort.signal.aborted) done();
      };
    });
  }
}
