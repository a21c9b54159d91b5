/**
 * Builds the hub as a fastify instance without listening, so tests build it,
 * listen on port 0 and close it. main.ts adds the process concerns (a managed
 * influxd, signals, the start banner).
 */
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { commandRoutes } from './api/commands.js';
import { dashboardPage } from './api/dashboard-page.js';
import { deadLetterRoutes } from './api/dead-letters.js';
import { deviceStateRoutes } from './api/device-state.js';
import { BucketRevokedSessions } from './api/revoked-sessions.js';
import { deviceRoutes } from './api/devices.js';
import { errorHandler } from './api/error-handler.js';
import { healthRoutes } from './api/health.js';
import { securityHeaders } from './api/security-headers.js';
import { seriesRoutes } from './api/series.js';
import { historyRoutes } from './api/history.js';
import { jobRoutes } from './api/jobs.js';
import { ruleRoutes } from './api/rules.js';
import { LiveFilter } from './live/filter.js';
import { AlertEngine } from './alerts/alert-engine.js';
import { RuleService } from './alerts/rule-service.js';
import type { Scheduler } from './commands/deadline.js';
import { DeviceOutbox } from './commands/outbox.js';
import { loginRoutes } from './api/login.js';
import { operatorAuth, OriginPolicy } from './api/operator-auth.js';
import { SessionKeys } from './api/session.js';
import { keyRoutes } from './api/keys.js';
import { auditRoutes } from './api/audit.js';
import { auditHook } from './audit/audit-hook.js';
import { AuditLog, pruneAuditHourly } from './audit/audit-log.js';
import { ApiKeyStore } from './operators/api-key-store.js';
import { KeyStreams } from './operators/key-streams.js';
import { OperatorKeys } from './operators/operator-keys.js';
import type { Config } from './config/index.js';
import { EventBus } from './events/bus.js';
import { REMEMBERED_SEQS } from './gateway/accepted-seqs.js';
import gateway, { type GatewayOptions } from './gateway/plugin.js';
import { httpFallback } from './gateway/http/plugin.js';
import live from './live/plugin.js';
import { HubMetrics } from './metrics/hub-metrics.js';
import { SUBPROTOCOL } from './protocol/messages.js';
import { applyServerLimits, clientErrorHandler, serverOptions, tlsServerOptions } from './server/http-limits.js';
import { refuseUpgradesWithoutSocket } from './server/upgrade-paths.js';
import { openLmdbStores } from './stores/open-lmdb-stores.js';
import type { Stores } from './stores/stores.js';
import { openServices, type Services } from './services.js';
import { ClusterNode, joinCluster } from './cluster/cluster-node.js';
import type { NatsLink } from './cluster/nats-link.js';
import type { HubMetricsSource } from './workers/messages.js';
import { InfluxReachability } from './storage/influx-reachability.js';
import { connectInflux, type InfluxConnection } from './storage/influx-connection.js';
import { Spool } from './storage/spool.js';
import { SpoolDrainer } from './storage/spool-drainer.js';
import { BacklogPacer } from './storage/backlog-pacer.js';
import { PointWriter } from './storage/writer.js';
import { cutUnfinishedResponsesOnClose } from './server/bounded-close.js';
import { webhookRoutes } from './api/webhooks.js';
import type { Resolve } from './webhooks/address-policy.js';
import { Webhooks } from './webhooks/webhooks.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    registry: Services['registry'];
    storage: InfluxConnection;
    /** Whether InfluxDB answers, from a background ping (what /readyz reports). */
    influxReachability: InfluxReachability;
    writer: PointWriter;
    spool: Spool;
    drainer: SpoolDrainer;
    pacer: BacklogPacer;
    bus: EventBus;
    metrics: HubMetrics;
    commands: Services['commands'];
    deviceState: Services['deviceState'];
    outbox: DeviceOutbox;
    jobs: Services['jobs'];
    /** Alert rules evaluated on the live path (src/alerts). */
    alerts: AlertEngine;
    rules: RuleService;
    stores: Stores;
    services: Services;
    presence: Services['presence'];
    online: Services['online'];
    /** Set in cluster mode (PULSEWIRE_NATS_URL): this hub is a node sharing its state through NATS. */
    cluster: ClusterNode | undefined;
    /** Outgoing webhooks: endpoints, outbox, recorder and deliverer (docs/webhooks.md). */
    webhooks: Webhooks;
    /** What GET /metrics serves: this process's metrics, or a hub of workers' added up (workers/messages.ts). */
    metricsText: () => Promise<{ text: string; contentType: string }>;
  }
}

export type BuildOptions = GatewayOptions & {
  /** The InfluxDB URL with its database path (main.ts resolves the managed default). */
  influxUrl: string;
  logger?: FastifyServerOptions['logger'];
  /** Live-stream timing; tests shorten the stall bound. */
  live?: { tickMs?: number; stallMs?: number; ringTicks?: number };
  /** The built dashboard (default: dist/dashboard, see api/dashboard-page.ts). */
  dashboardDir?: string;
  /** The shared stores (cluster mode: JetStream, opened by main.ts); default: lmdb under the data dir. */
  stores?: Stores;
  /** A worker of a hub of several processes: /metrics answers for all of them. */
  hubMetrics?: HubMetricsSource;
  /** The command service's clock (epoch ms) and the scheduler of its hourly prune; tests move and run them. */
  commands?: { now?: () => number; pruneScheduler?: Scheduler };
  /** Host name resolution of the webhook address policy (tests play DNS rebinding with it). */
  webhooks?: { resolve?: Resolve };
  /** The alert engine's clock and staleness sweep period (default 1 s); tests move and shorten them. */
  alerts?: { now?: () => number; sweepMs?: number };
};

/**
 * Largest JSON body of the operator API (fastify's default, said here so the
 * docs can name it): a job listing 10,000 ids or the largest command fits.
 * Over it: 413 PW_ERR_BODY_TOO_BIG. Device bodies have their own limit.
 */
export const OPERATOR_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * No log line carries a credential today (test/security/secrets-in-logs.test.ts greps a full run for
 * each); should a later one log a request's headers or a login body, these are blanked all the same.
 */
const LOGGED_CREDENTIALS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie',
  'request.headers.authorization', 'request.headers.cookie', 'res.headers["set-cookie"]', 'body.token',
];

export async function buildApp(config: Config, opts: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel, redact: { paths: LOGGED_CREDENTIALS, censor: '[redacted]' } },
    bodyLimit: OPERATOR_BODY_LIMIT_BYTES,
    // fastify's default (removeAdditional: true) silently drops a field a schema does not declare,
    // so a misspelt `ttlms` meant the default TTL. Refused instead: 400 naming the field (error-handler.ts).
    ajv: { customOptions: { removeAdditional: false } },
    // One log line per device connection is enough; per-request lines would drown them.
    logController: new LogController({ disableRequestLogging: true }),
    // Slow or oversized request heads are cut before any route runs (server/http-limits.ts).
    ...(config.tls ? { https: { ...tlsOptions(config.tls), ...serverOptions(config), ...tlsServerOptions(config) } } : { http: serverOptions(config) }),
    requestTimeout: config.requestTimeoutMs,
    clientErrorHandler: clientErrorHandler((reason) => app.metrics.httpClientErrors.inc({ reason })),
    // Behind a load balancer the peer is the balancer: request.ip (rate limits, presence, logs) and request.protocol
    // come from its X-Forwarded-* headers, but only from the proxies the operator named.
    ...(config.trustProxy ? { trustProxy: [...config.trustProxy] } : {}),
  }) as unknown as FastifyInstance;

  applyServerLimits(app.server, config);
  mkdirSync(config.dataDir, { recursive: true });
  // Cluster mode: NATS must answer now (main.ts exits naming PULSEWIRE_NATS_URL if not); later outages are survived.
  let link: NatsLink | undefined;
  let stores: Stores;
  if (opts.stores) stores = opts.stores;
  else if (config.cluster) ({ link, stores } = await joinCluster(config, app.log));
  else stores = await openLmdbStores(config.dataDir);
  const storage = connectInflux(opts.influxUrl);
  const writer = new PointWriter(storage, { maxBatchPoints: config.writeBatchPoints, maxConcurrentWrites: config.writeConcurrency, logger: app.log });
  // TELEMETRY is ACKed once in the spool; the drainer moves it into InfluxDB (see storage/spool.ts).
  const spool = Spool.open(path.join(config.dataDir, 'spool'), {
    maxBytes: config.spoolMaxBytes, windowSize: REMEMBERED_SEQS, deadLettersMax: config.deadLettersMax, logger: app.log,
    sync: config.spoolSync,
    onCommitTimed: (ms) => app.metrics.spoolCommits.observe(ms / 1000),
  });
  // A round holds a request for every write slot: with two rounds in flight the writer always has the next ones queued.
  const drainer = new SpoolDrainer(spool, writer, { batchPoints: config.writeConcurrency * config.writeBatchPoints, logger: app.log });
  const pacer = new BacklogPacer(
    { get backlogPoints() { return spool.backlogPoints; }, get deliveryFailing() { return drainer.stats.backingOff; } },
    // Ten write requests' worth beyond what the drainer has in flight (those points count in the backlog until
    // InfluxDB confirms them): enough to keep requests full and to ride out a slow write of a few hundred ms
    // without holding ACKs, small enough to drain fast. With marks that counted the in-flight points, three
    // writes in flight left 20,000 points of room and a 50% load had 1 to 5% of its ACKs held (BENCHMARKS.md).
    {
      highWaterPoints: drainer.maxPointsInFlight + 10 * config.writeBatchPoints,
      lowWaterPoints: drainer.maxPointsInFlight + 4 * config.writeBatchPoints,
    },
  );
  spool.onRemoved(() => pacer.update());
  // The drainer starting to back off releases held ACKs; a slow poll is enough for that edge.
  const pacerPoll = setInterval(() => pacer.update(), 250);
  pacerPoll.unref();
  const bus = new EventBus();
  app.decorate('config', config);
  app.decorate('stores', stores);
  app.decorate('storage', storage);
  const influxReachability = new InfluxReachability((timeoutMs) => storage.ping(timeoutMs));
  app.decorate('influxReachability', influxReachability);
  influxReachability.start();
  app.addHook('onClose', async () => influxReachability.stop());
  app.decorate('writer', writer);
  app.decorate('spool', spool);
  app.decorate('drainer', drainer);
  app.decorate('pacer', pacer);
  app.decorate('bus', bus);
  app.decorate('metrics', new HubMetrics({
    onlineDevices: () => app.gateway.runtimes.onlineCount,
    runtimes: () => ({ held: app.gateway.runtimes.size, forgotten: app.gateway.runtimes.forgotten }),
    admission: () => ({ connections: app.gateway.admission.connections, handshakes: app.gateway.admission.handshakes, waiting: app.gateway.admission.waiting }),
    writer: () => writer.stats,
    writeLatency: () => ({ sumMs: writer.stats.latencySumMs, count: writer.stats.latencyCount }),
    spool: () => spool.stats,
    drainer: () => drainer.stats,
    deadLetters: () => spool.deadLetterCount,
    deadLettersDropped: () => spool.deadLetters.droppedSinceStart,
    series: () => spool.names.series,
    authLimiters: () => [
      { limiter: 'device', size: app.gateway.authLimiter.size, evicted: app.gateway.authLimiter.evicted },
      ...(app.hasDecorator('loginLimiter') ? [{ limiter: 'operator', size: app.loginLimiter.size, evicted: app.loginLimiter.evicted }] : []),
    ],
    pacer: () => ({ waiting: pacer.waiting, pacedTotal: pacer.pacedTotal }),
    live: () => (app.hasDecorator('live') ? app.live.stats : undefined),
    webhooks: () => (app.hasDecorator('webhooks') ? app.webhooks.stats : undefined),
    ...(link ? { cluster: () => app.cluster?.stats() } : {}),
  }));
  const hubMetrics = opts.hubMetrics?.(app.metrics.registry);
  app.decorate('metricsText', hubMetrics ?? (async () => ({ text: await app.metrics.registry.metrics(), contentType: app.metrics.registry.contentType })));
  const services = await openServices({
    stores, bus, nodeId: config.nodeId, nodeLeaseMs: config.nodeLeaseMs, limits: config, points: spool, logger: app.log,
    local: () => app.gateway.runtimes, ...(opts.commands ? { commandClock: opts.commands } : {}),
  });
  const { registry, commands, deviceState } = services;
  app.decorate('services', services);
  app.decorate('registry', registry);
  app.decorate('presence', services.presence);
  app.decorate('online', services.online);
  app.decorate('commands', commands);
  app.decorate('deviceState', deviceState);
  app.decorate('outbox', new DeviceOutbox({ bus, commands, state: deviceState, linkOf: (id) => app.gateway.runtimes.peek(id)?.session, logger: app.log }));
  app.decorate('jobs', services.jobs);
  app.setErrorHandler(errorHandler);

  // InfluxDB may still be starting (or down): the hub comes up anyway and /readyz tells.
  let closed = false;
  app.addHook('onClose', async () => { closed = true; });
  void ensureDatabaseWithRetry(app, () => closed);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Pulsewire operator API', version: '1' },
      // Each operation also states the scope a key needs for it as `x-scope` (operators/scopes.ts).
      components: { securitySchemes: { operatorToken: { type: 'http', scheme: 'bearer', description: 'an operator key (POST /v1/keys) or PULSEWIRE_OPERATOR_TOKEN' } } },
      security: [{ operatorToken: [] }],
    },
  });
  // Before any route, so every route gets the headers unless it opts out (device routes do).
  await app.register(securityHeaders, { tls: config.tls !== undefined });
  await app.register(websocket, {
    options: {
      maxPayload: config.maxMessageBytes,
      perMessageDeflate: config.permessageDeflate,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    },
    // Replaced by the gateway's own shutdown, which closes devices with 1001 rather than 1005.
    preClose: (done) => done(),
  });
  // Before any route: each socket route is recorded as it is added.
  refuseUpgradesWithoutSocket(app, () => app.metrics.handshakeRefusals.inc({ reason: 'PW_ERR_NO_SOCKET_HERE' }));
  const cluster = link ? new ClusterNode({ link, stores, services, bus, config, logger: app.log, sink: spool }) : undefined;
  app.decorate('cluster', cluster);
  cluster?.start();
  // Before the gateway: a device connecting at once is an event an endpoint may want.
  const webhooks = new Webhooks({
    stores, bus, nodeId: config.nodeId, config: config.webhooks, logger: app.log,
    ...(cluster ? { isRemote: (payload: object) => cluster.bridge.isRemote(payload) } : {}),
    ...(opts.webhooks?.resolve ? { resolve: opts.webhooks.resolve } : {}),
  });
  await webhooks.open();
  app.decorate('webhooks', webhooks);
  await app.register(gateway, { ...(opts.nowUs ? { nowUs: opts.nowUs } : {}) });
  await app.register(httpFallback);
  const alerts = new AlertEngine({
    bus, rules: stores.alertRules, alerts: stores.alerts, points: spool, logger: app.log, ...opts.alerts,
    // Cluster mode: the bridge also brings other nodes' readings (for dashboards); each node evaluates only those it accepted.
    // Not "a runtime is here": a node keeps a device's runtime for PULSEWIRE_DEVICE_FORGET_MS after it moved away.
    ...(cluster ? { isRemote: (payload: object) => cluster.bridge.isRemote(payload) } : {}),
    // The live stream is registered below: until then (this start) there is nothing to know; liveSeeded catches up.
    knownSeries: () => (app.hasDecorator('live') ? app.live.latest(LiveFilter.ALL) : []),
  });
  await alerts.start();
  app.decorate('alerts', alerts);
  app.decorate('rules', new RuleService({ bucket: stores.alertRules, engine: alerts, ...(opts.alerts?.now ? { now: opts.alerts.now } : {}) }));

  const origins = new OriginPolicy(config.allowedOrigins, config.tls !== undefined);
  const sessions = new SessionKeys(config.operatorToken, { revoked: new BucketRevokedSessions(stores.revokedSessions) });
  const keyStore = new ApiKeyStore(stores.apiKeys);
  const keys = new OperatorKeys({ bootstrapToken: config.operatorToken, store: keyStore, logger: app.log });
  const auth = operatorAuth({ keys, sessions, origins });
  const requireOperator = auth.requireOperator;
  app.decorateRequest('operator', undefined);
  app.decorateRequest('auditAction', undefined);
  // A key revoked on any node ends its live streams on this one.
  const streams = new KeyStreams();
  const stopWatchingKeys = keyStore.onRevoked((keyId) => streams.revoked(keyId));
  app.addHook('onClose', async () => { stopWatchingKeys(); });
  const audit = new AuditLog({ bucket: stores.audit, points: spool, logger: app.log });
  const auditPrune = pruneAuditHourly(audit, config.auditRetentionMs, app.log);
  app.addHook('onClose', async () => { clearInterval(auditPrune); });
  await app.register(healthRoutes, { requireOperator });
  await app.register(loginRoutes, {
    auth, sessions, origins, secure: config.tls !== undefined, maxFailures: config.authMaxFailures, blockMs: config.authBlockMs, maxAddresses: config.authMaxAddresses,
  });
  await app.register(live, { requireOperator, origins, streams, ...opts.live });
  app.live.useAlerts(() => alerts.firing());
  alerts.onAlert((alert) => app.live.alert(alert));
  // Staleness rules watch the devices InfluxDB knows to send their series, so one that went quiet across the restart fires.
  void app.liveSeeded.then((seeded) => { if (seeded) alerts.watchKnown(app.live.latest(LiveFilter.ALL)); });
  cluster?.connectLive(app.live, (deviceId) => app.gateway.runtimes.peek(deviceId) !== undefined);
  await app.register(async (operator) => {
    operator.addHook('onRequest', requireOperator);
    // Every route that states an `x-audit` action gets its entry before the answer leaves.
    operator.addHook('onSend', auditHook(audit));
    await operator.register(deviceRoutes);
    await operator.register(historyRoutes);
    await operator.register(seriesRoutes);
    await operator.register(deadLetterRoutes);
    await operator.register(commandRoutes);
    await operator.register(deviceStateRoutes);
    await operator.register(jobRoutes);
    await operator.register(ruleRoutes, { rules: app.rules, engine: alerts });
    await operator.register(keyRoutes, { store: keyStore });
    await operator.register(auditRoutes, { audit });
    await operator.register(webhookRoutes, { webhooks });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // Static and public: the page asks for the login before it reads any data.
  await app.register(dashboardPage, opts.dashboardDir ? { root: opts.dashboardDir } : {});

  drainer.start();
  // Work done once per cluster (with one process: here, at once): command deadlines and pruning, job rollouts.
  // Rollouts look at the gateway's sessions, so only once everything is registered.
  await services.start();
  if (cluster) await services.leases.hold('node-lost', cluster.nodeLost);
  await webhooks.start(services.leases);
  // Runs after the gateway closed every device, so nothing is appended any more. Whatever
  // the drainer cannot deliver within its share of the shutdown bound stays spooled for the
  // next start; a write still retrying is abandoned (it is in the spool, so nothing is lost).
  app.addHook('onClose', async () => {
    clearInterval(pacerPoll);
    pacer.releaseAll();
    const bound = config.shutdownTimeoutMs / 4;
    await drainer.stop(bound);
    await Promise.race([writer.close(), new Promise((r) => setTimeout(r, bound).unref())]);
    app.outbox.close();
    // Alerts first: what they announce while stopping is still recorded for delivery.
    await alerts.close();
    await webhooks.close();
    cluster?.stop();
    await cluster?.handover.flush();
    await services.close();
    await spool.close();
    await stores.close();
    await link?.close();
  });
  cutUnfinishedResponsesOnClose(app, config.shutdownTimeoutMs / 4);
  return app;
}

async function ensureDatabaseWithRetry(app: FastifyInstance, isClosed: () => boolean): Promise<void> {
  for (let attempt = 0; !isClosed(); attempt++) {
    try {
      await app.storage.ensureDatabase();
      if (attempt > 0) app.log.info({ database: app.storage.database }, 'InfluxDB database ready');
      return;
    } catch (err) {
      if (attempt === 0) app.log.warn({ err: (err as Error).message }, 'InfluxDB not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)).unref());
    }
  }
}

function tlsOptions(tls: NonNullable<Config['tls']>) {
  return {
    cert: tls.cert,
    key: tls.key,
    // Ask for a client certificate only when we can verify it; devices without one still
    // authenticate with a secret, so an unverified or absent certificate is not fatal here.
    ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: false } : {}),
  };
}
