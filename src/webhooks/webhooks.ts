/**
 * The webhooks of one hub node, wired once: the endpoints (every node), the
 * recorder (every node, its own events), and the deliverer (the node holding
 * the `webhooks` lease; with one process, this one). app.ts opens it after
 * the services, starts it once everything that emits is registered, and
 * closes it before the stores.
 */
import type { WebhookConfig } from '../config/index.js';
import type { Leases } from '../cluster/leases.js';
import type { EventBus } from '../events/bus.js';
import type { Stores } from '../stores/stores.js';
import { checkEndpointAddress, parseWebhookUrl, systemResolve, type Resolve } from './address-policy.js';
import { WebhookDeliverer } from './deliverer.js';
import { EndpointStore } from './endpoint-store.js';
import { WebhookOutbox } from './outbox.js';
import { WebhookRecorder } from './recorder.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export const WEBHOOKS_LEASE = 'webhooks';

export type WebhooksOptions = {
  stores: Stores;
  bus: EventBus;
  nodeId: string;
  config: WebhookConfig;
  logger: Logger;
  /** Cluster mode: whether a bus payload came from another node (cluster/bus-bridge.ts). */
  isRemote?: (payload: object) => boolean;
  /** Host name resolution for the address policy (tests play DNS tricks with it). */
  resolve?: Resolve;
};

export class Webhooks {
  readonly endpoints: EndpointStore;
  readonly outbox: WebhookOutbox;
  readonly recorder: WebhookRecorder;
  readonly deliverer: WebhookDeliverer;
  readonly #resolve: Resolve | undefined;

  constructor(opts: WebhooksOptions) {
    this.#resolve = opts.config.allowPrivate ? undefined : opts.resolve ?? systemResolve;
    this.endpoints = new EndpointStore({ bucket: opts.stores.webhooks, maxEndpoints: opts.config.maxEndpoints });
    this.outbox = new WebhookOutbox({ outbox: opts.stores.webhookOutbox, failed: opts.stores.webhookFailed, nodeId: opts.nodeId });
    this.recorder = new WebhookRecorder({
      bus: opts.bus, endpoints: this.endpoints, outbox: this.outbox, logger: opts.logger, ...(opts.isRemote ? { isRemote: opts.isRemote } : {}),
    });
    this.deliverer = new WebhookDeliverer({ endpoints: this.endpoints, outbox: this.outbox, config: opts.config, resolve: this.#resolve, logger: opts.logger });
  }

  /** Loads the endpoints and starts recording events. */
  async open(): Promise<void> {
    await this.endpoints.open();
    this.recorder.start();
  }

  /** Delivers whenever this node holds the `webhooks` lease. */
  async start(leases: Leases): Promise<void> {
    await leases.hold(WEBHOOKS_LEASE, this.deliverer);
  }

  /** Stops recording and delivering; what is queued stays for the next start (or the next lease holder). */
  async close(): Promise<void> {
    await this.recorder.stop();
    this.deliverer.lost();
    this.endpoints.close();
  }

  /** What /metrics shows (hub-metrics.ts). */
  get stats(): { queued: number; delivered: number; attemptsFailed: number; gaveUp: number; endpointsDelivering: number } {
    const d = this.deliverer.stats;
    return { queued: this.recorder.recorded, delivered: d.delivered, attemptsFailed: d.attemptsFailed, gaveUp: d.gaveUp, endpointsDelivering: d.endpoints };
  }

  /** The URL if the hub would post to it (PW_ERR_WEBHOOK_URL, PW_ERR_WEBHOOK_ADDRESS_REFUSED otherwise). */
  async checkUrl(raw: string): Promise<string> {
    const url = parseWebhookUrl(raw);
    if (this.#resolve) await checkEndpointAddress(url, this.#resolve);
    return url.href;
  }
}
