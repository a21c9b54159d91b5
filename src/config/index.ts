/**
 * The hub's configuration: read once from the environment at start, checked,
 * typed and frozen. A bad value stops the hub with a message that names the
 * variable and what it allows, instead of failing later on first use.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { configError, envBoolean, envInteger, envList, envString, envUrl, type Env } from './parse.js';

export type TlsConfig = {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** When set, device client certificates are verified against it (mTLS). */
  readonly ca: Buffer | undefined;
};

export type Config = {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Unset: the hub starts and supervises its own influxd under dataDir. */
  readonly influxUrl: string | undefined;
  /** The current enrollment key: what new devices are told to use (the first of enrollmentKeys). */
  readonly enrollmentKey: string | undefined;
  /** Every enrollment key a device is accepted under: the current one first, then previous ones still honoured. */
  readonly enrollmentKeys: readonly string[];
  readonly operatorToken: string;
  /** True when the token was generated because none was configured. */
  readonly operatorTokenGenerated: boolean;
  readonly pingIntervalMs: number;
  readonly maxMessageBytes: number;
  readonly permessageDeflate: boolean;
  readonly maxRecordsPerPack: number;
  readonly maxFutureSeconds: number;
  readonly maxPastSeconds: number;
  readonly maxNamesPerDevice: number;
  /** Series (device, name) this hub process stores before new ones get ACK 5. */
  readonly maxSeries: number;
  readonly authMaxFailures: number;
  readonly authBlockMs: number;
  /** Addresses the failed-login limiters remember at most (each); past it the least recently failed is forgotten. */
  readonly authMaxAddresses: number;
  /** A device without a connection for this long has its in-memory runtime forgotten (its durable state stays). */
  readonly deviceForgetMs: number;
  readonly shutdownTimeoutMs: number;
  readonly writeBatchPoints: number;
  /** InfluxDB write requests in flight at once. */
  readonly writeConcurrency: number;
  /** Bound of the on-disk spool between the gateway and InfluxDB; when reached, TELEMETRY gets ACK 4. */
  readonly spoolMaxBytes: number;
  /** What ACK 0 waits for: the spool's commit (survives a crash of the process) or also its flush to disk (survives a power loss). */
  readonly spoolSync: SpoolSync;
  /** Most dead letters kept; past it the oldest go. */
  readonly deadLettersMax: number;
  /** Protocol section 3 command queue: most commands waiting per device, and how long one may wait. */
  readonly commandQueueMax: number;
  readonly commandTtlMs: number;
  /** Default time from "sent" to a final RESULT before a command is timed out. */
  readonly commandTimeoutMs: number;
  /** How long finished commands stay readable in the API. */
  readonly commandRetentionMs: number;
  /** How long audit entries are kept (the store; InfluxDB's copy follows the database's retention policy). */
  readonly auditRetentionMs: number;
  readonly logLevel: string;
  readonly tls: TlsConfig | undefined;
  /** Origins a browser may use operator endpoints from; undefined means only the hub's own origin. */
  readonly allowedOrigins: readonly string[] | undefined;
  /** Bytes queued on a live connection past which its stream conflates. */
  readonly liveConflateBytes: number;
  /** Bytes queued on a live connection past which it is closed with 1013. */
  readonly liveMaxBufferedBytes: number;
  /** Series whose latest value the live snapshot remembers. */
  readonly liveMaxSeries: number;
  /** HTTP fallback (protocol section 8): sustained requests per second per device before 429. */
  readonly httpDeviceRatePerS: number;
  /** Device connections (handshakes included) this process admits; undefined: what the open-files limit allows, less a reserve. */
  readonly maxDeviceConnections: number | undefined;
  /** Device connections from one address (IPv6: one /64); undefined: no cap. */
  readonly maxConnectionsPerAddress: number | undefined;
  /** Device handshakes in progress at once, and begun per second, before 503. */
  readonly maxHandshakes: number;
  readonly acceptRate: number;
  /** Device upgrades that may wait for their turn; 0: refused at once (gateway/admission.ts). */
  readonly admissionQueue: number;
  readonly admissionWaitMs: number;
  /** listen(2)'s backlog: the kernel's queue of connections not yet accepted. */
  readonly listenBacklog: number;
  /** Per device, whatever the transport: messages and readings per second before ACK 4 (bursts of twice the rate). */
  readonly deviceMessageRate: number;
  readonly deviceReadingRate: number;
  /** Longest a client may take to send a request's headers (and, with TLS, to finish the TLS handshake): slowloris. */
  readonly handshakeTimeoutMs: number;
  /** Longest a client may take to send a whole request, body included. */
  readonly requestTimeoutMs: number;
  /** Largest request head (request line and headers) in bytes; more gets 431. */
  readonly maxHeaderBytes: number;
  /** Names this hub process among the nodes of a cluster (and in presence records with one process too). */
  readonly nodeId: string;
  /** A node that stops beating is lost after this long, and so are the leases it held. */
  readonly nodeLeaseMs: number;
  /** Names the cluster's buckets and subjects (PULSEWIRE_CLUSTER_NAME): a node's, or a hub of workers'. */
  readonly clusterName: string;
  /** Worker processes sharing the port (PULSEWIRE_WORKERS); 1: the hub is one process, as it always was. */
  readonly workers: number;
  /** Proxies (addresses or CIDRs) whose X-Forwarded-For and X-Forwarded-Proto are believed; undefined: none. */
  readonly trustProxy: readonly string[] | undefined;
  /** Set: this hub is a node of a cluster sharing its state through NATS JetStream (PULSEWIRE_NATS_URL). */
  readonly cluster: ClusterConfig | undefined;
  /** Outgoing webhooks (docs/webhooks.md): delivery bounds and the address policy. */
  readonly webhooks: WebhookConfig;
};

export type WebhookConfig = {
  /** Let endpoints resolve to loopback, private, link-local or metadata addresses (refused by default: SSRF). */
  readonly allowPrivate: boolean;
  /** Longest one delivery (connect, request, answer) may take before it counts as failed. */
  readonly timeoutMs: number;
  /** First retry delay; each further one doubles, up to backoffMaxMs, with jitter. */
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
  /** How long an event is retried after it was queued before it goes to the endpoint's failed list. */
  readonly retryForMs: number;
  /** An endpoint failing every attempt for this long is paused, with the reason. */
  readonly pauseAfterMs: number;
  /** Endpoints the hub accepts at most (each has its own delivery loop and connection). */
  readonly maxEndpoints: number;
};

export type ClusterConfig = {
  /** NATS server URLs (nats:// or tls://; user:password@ or a token in the URL as the NATS client takes them). */
  readonly servers: readonly string[];
  /** Names the cluster's buckets and subjects, so several hubs can share one NATS. */
  readonly name: string;
  /** JetStream replicas of every bucket (up to the NATS cluster's size). */
  readonly replicas: number;
  /** A NATS credentials file (JWT and nkey seed). */
  readonly credsFile: string | undefined;
  readonly tls: { readonly ca: Buffer | undefined; readonly cert: Buffer | undefined; readonly key: Buffer | undefined } | undefined;
};

export type { Env };

/** One row per variable: the README's configuration table is written from this. */
export const CONFIG_DOC = [
  ['PULSEWIRE_HOST', '127.0.0.1', 'listen address'],
  ['PULSEWIRE_PORT', '8080', 'one port for HTTP, device and operator sockets (0 picks a free one)'],
  ['PULSEWIRE_DATA_DIR', './data', "the hub's durable state (lmdb) and a managed InfluxDB's files"],
  ['PULSEWIRE_INFLUX_URL', 'unset', 'e.g. http://127.0.0.1:8086/pulsewire; the path is the database, created if missing. Unset: the hub runs its own influxd under the data dir'],
  ['PULSEWIRE_ENROLLMENT_KEY', 'unset', 'key from which device secrets are derived (zero-touch provisioning); to rotate it, the new key, a comma, then the previous ones (each at least 16 characters, no commas): devices are accepted under any, and GET /v1/devices/:id shows which one a device last used'],
  ['PULSEWIRE_OPERATOR_TOKEN', 'generated', 'bearer token for every operator endpoint; generated and printed at start when unset'],
  ['PULSEWIRE_PING_INTERVAL_MS', '25000', 'liveness ping interval; a dead device is offline within two'],
  ['PULSEWIRE_MAX_MESSAGE_BYTES', '65536', 'largest device message; larger closes with 1009'],
  ['PULSEWIRE_PERMESSAGE_DEFLATE', 'false', 'offer permessage-deflate to devices'],
  ['PULSEWIRE_MAX_RECORDS', '1024', 'most SenML records in one pack'],
  ['PULSEWIRE_MAX_FUTURE_S', '300', 'how far ahead of the hub clock a reading may be'],
  ['PULSEWIRE_MAX_PAST_S', '2592000', 'how far behind the hub clock a reading may be (30 days)'],
  ['PULSEWIRE_MAX_NAMES_PER_DEVICE', '1000', 'distinct series names per device before ACK code 5; durable (kept with the spool, so a restart does not start it again; in cluster mode it moves with the device)'],
  ['PULSEWIRE_MAX_SERIES', '1000000', "series (distinct device and name pairs) the hub stores before a message bringing a new one gets ACK 5 (InfluxDB's own default max-series-per-database); known series stay fine. Per process: with PULSEWIRE_WORKERS or cluster nodes, each counts the series its devices brought it"],
  ['PULSEWIRE_AUTH_MAX_FAILURES', '10', 'failed device or operator logins per address per minute before 429'],
  ['PULSEWIRE_AUTH_BLOCK_MS', '60000', 'how long an address stays refused after too many failures'],
  ['PULSEWIRE_AUTH_MAX_ADDRESSES', '100000', 'addresses the failed-login limiter remembers (device and operator logins each; about 100 bytes each); past it the least recently failed is forgotten, counted in pulsewire_auth_limiter_evictions_total'],
  ['PULSEWIRE_DEVICE_FORGET_MS', '3600000', 'a device without a connection for this long (1 hour) has its per-device memory in this process forgotten (rates, window and names as loaded); its duplicate window and names are on disk and come back when it does'],
  ['PULSEWIRE_SHUTDOWN_TIMEOUT_MS', '10000', 'bound on a graceful shutdown'],
  ['PULSEWIRE_WRITE_BATCH_POINTS', '5000', 'most points in one InfluxDB write request'],
  ['PULSEWIRE_WRITE_CONCURRENCY', '3', 'InfluxDB write requests in flight at once; more help when InfluxDB is far away (each request waits a round trip). On loopback 3 wrote about 10% more than 2, and 4 no more than 3 (BENCHMARKS.md, Findings)'],
  ['PULSEWIRE_SPOOL_MAX_BYTES', '1073741824', 'bound of the on-disk spool (1 GiB); when full, TELEMETRY gets ACK 4 until it drains below 90%'],
  ['PULSEWIRE_SPOOL_SYNC', 'commit', 'what ACK 0 waits for: `commit` (the spool\'s commit; survives a crash of the hub process) or `flush` (also its fsync to disk; survives a power loss, costs CPU and latency per commit)'],
  ['PULSEWIRE_DEAD_LETTERS_MAX', '10000', 'most dead letters kept (readings InfluxDB refused, GET /v1/dead-letters; one per refused message); past it the oldest are deleted and counted in pulsewire_dead_letters_dropped_total'],
  ['PULSEWIRE_COMMAND_QUEUE_MAX', '100', 'most commands waiting for one device (queued or sent, not final); more get HTTP 429'],
  ['PULSEWIRE_COMMAND_TTL_MS', '3600000', 'default and largest ttlMs of a command: one not sent within it expires (1 hour; at most 30 days)'],
  ['PULSEWIRE_COMMAND_TIMEOUT_MS', '30000', 'default timeoutMs: a sent command with no final RESULT within it is timed-out'],
  ['PULSEWIRE_COMMAND_RETENTION_MS', '604800000', 'how long finished commands stay readable in the API (7 days)'],
  ['PULSEWIRE_AUDIT_RETENTION_MS', '7776000000', 'how long audit entries stay in GET /v1/audit (90 days; 60000 to 3650 days); the InfluxDB copy follows the database\'s retention policy'],
  ['PULSEWIRE_LOG_LEVEL', 'info', 'fatal, error, warn, info, debug, trace or silent'],
  ['PULSEWIRE_TLS_CERT', 'unset', 'PEM certificate file: serve https/wss (with PULSEWIRE_TLS_KEY)'],
  ['PULSEWIRE_TLS_KEY', 'unset', 'PEM private key file for PULSEWIRE_TLS_CERT'],
  ['PULSEWIRE_TLS_CA', 'unset', 'PEM CA file: verify device client certificates (mTLS; CN = device id)'],
  ['PULSEWIRE_ALLOWED_ORIGINS', "the hub's own", 'comma-separated origins (e.g. https://ops.example.com) browsers may use the live stream and cookie-authenticated operator endpoints from'],
  ['PULSEWIRE_LIVE_CONFLATE_BYTES', '1048576', 'bytes queued on one live-stream connection past which it gets only the latest value per series (`conflated: true`)'],
  ['PULSEWIRE_LIVE_MAX_BUFFERED_BYTES', '16777216', 'bytes queued on one live-stream connection past which it is closed with 1013; must exceed the conflate threshold'],
  ['PULSEWIRE_LIVE_MAX_SERIES', '200000', 'series whose latest value the live snapshot keeps in memory (about 300 bytes each); readings of series beyond it are streamed but not in snapshots, counted in pulsewire_live_untracked_readings_total'],
  ['PULSEWIRE_HTTP_DEVICE_RATE', '5', 'HTTP fallback: requests per second one device may make (bursts of max(10, 2 x rate) pass); more get 429 with Retry-After'],
  ['PULSEWIRE_MAX_DEVICE_CONNECTIONS', 'auto', 'device WebSocket connections (handshakes included) one hub process admits; more get 503 with Retry-After before the upgrade. auto: what the open-files limit allows, less 200 kept for operators, the HTTP fallback and storage. Per process: with PULSEWIRE_WORKERS or cluster nodes, each has its own'],
  ['PULSEWIRE_MAX_CONNECTIONS_PER_ADDRESS', 'unset', 'device connections from one source address (IPv6: one /64; the client address behind PULSEWIRE_TRUST_PROXY) one hub process admits; more get 503 with Retry-After. Unset: no cap (fleets behind one NAT share an address). Per process, as above'],
  ['PULSEWIRE_MAX_HANDSHAKES', '1000', 'device upgrades in progress at once (from their turn to the 101) in one hub process; more wait in the admission queue. Per process'],
  ['PULSEWIRE_ACCEPT_RATE', '2000', 'device upgrades one hub process begins per second; more wait in the admission queue, so a reconnect storm comes in at a pace that leaves the event loop to the connected devices and /readyz. Per process'],
  ['PULSEWIRE_ADMISSION_QUEUE', '10000', 'device upgrades that may wait for their turn (past PULSEWIRE_ACCEPT_RATE or PULSEWIRE_MAX_HANDSHAKES), holding their request unanswered; more get 503 with Retry-After of 1 to 5 s. 0: none wait, past the rate or the handshakes is refused at once. Per process'],
  ['PULSEWIRE_ADMISSION_WAIT_MS', '5000', 'longest a device upgrade waits in the admission queue (0 to 60000); longer gets 503 with Retry-After of 1 to 5 s. 0: none wait'],
  ['PULSEWIRE_LISTEN_BACKLOG', '4096', 'connections the kernel queues for the hub before it accepts them (capped by net.core.somaxconn). A reconnect storm overflows a short queue: the kernel then drops connection attempts, which retry a second or more later (devices and health probes alike)'],
  ['PULSEWIRE_DEVICE_MESSAGE_RATE', '1000', 'messages per second one device may send (bursts of 2 x rate pass); more: TELEMETRY gets ACK 4 with the reason, a bare pack is dropped, a REPORTED closes with 1008. RESULT is not counted'],
  ['PULSEWIRE_DEVICE_READING_RATE', '10000', 'SenML records per second one device may send (bursts of max(2 x rate, PULSEWIRE_MAX_RECORDS) pass); more: ACK 4 with the reason'],
  ['PULSEWIRE_HANDSHAKE_TIMEOUT_MS', '10000', 'longest a client may take to send its request headers (a WebSocket upgrade too) and, with TLS, to finish the TLS handshake; slower ones (slowloris) get 408 and are cut'],
  ['PULSEWIRE_REQUEST_TIMEOUT_MS', '60000', 'longest a client may take to send a whole request, body included (at least PULSEWIRE_HANDSHAKE_TIMEOUT_MS); slower ones get 408. Does not limit long polls or open sockets'],
  ['PULSEWIRE_MAX_HEADER_BYTES', '16384', 'largest request line plus headers, in bytes (Node\'s default); larger gets 431'],
  ['PULSEWIRE_WORKERS', '1', 'worker processes sharing the one port, each a node of one cluster (auto: one per core); each holds its own sockets and open-files budget. More than 1 without PULSEWIRE_NATS_URL: the hub runs its own nats-server under the data dir'],
  ['PULSEWIRE_TRUST_PROXY', 'unset', 'comma-separated addresses or CIDRs of load balancers in front of the hub (e.g. 127.0.0.1,10.0.0.0/8): their X-Forwarded-For gives the client address (rate limits, logs) and X-Forwarded-Proto the scheme. Unset: the peer address counts'],
  ['PULSEWIRE_NATS_URL', 'unset', 'cluster mode: NATS server URLs, comma-separated (nats://host:4222, tls://...; user:password@ or a token in the URL); the hub becomes a node sharing its state through JetStream (docs/deploy.md). Unset: one process, lmdb'],
  ['PULSEWIRE_NODE_ID', 'host name and pid', 'names this hub among the nodes of a cluster (1 to 64 printable characters, no spaces)'],
  ['PULSEWIRE_CLUSTER_NAME', 'pulsewire', 'cluster mode: names the JetStream buckets and NATS subjects, so several hubs can share one NATS (A-Z a-z 0-9 _ -)'],
  ['PULSEWIRE_NATS_REPLICAS', '1', 'cluster mode: JetStream replicas of every bucket (1 to 5; at most the NATS cluster size)'],
  ['PULSEWIRE_NATS_CREDS', 'unset', 'cluster mode: a NATS credentials file (JWT and nkey seed)'],
  ['PULSEWIRE_NATS_TLS_CA', 'unset', 'cluster mode: PEM CA file to verify the NATS servers (with tls:// URLs)'],
  ['PULSEWIRE_NATS_TLS_CERT', 'unset', 'cluster mode: PEM client certificate for NATS (with PULSEWIRE_NATS_TLS_KEY)'],
  ['PULSEWIRE_NATS_TLS_KEY', 'unset', 'cluster mode: PEM private key for PULSEWIRE_NATS_TLS_CERT'],
  ['PULSEWIRE_NODE_LEASE_MS', '15000', 'cluster mode: a node that stops beating is lost after this long (its devices listed offline with reason node-lost), and so are its leases'],
  ['PULSEWIRE_WEBHOOK_ALLOW_PRIVATE', 'false', 'let webhook endpoints resolve to loopback, private, link-local or cloud metadata addresses (refused by default, at registration and again at each delivery: server-side request forgery)'],
  ['PULSEWIRE_WEBHOOK_TIMEOUT_MS', '10000', 'longest one webhook delivery may take (connect, request, answer) before it counts as failed (100 to 120000)'],
  ['PULSEWIRE_WEBHOOK_BACKOFF_MS', '1000', 'first retry delay of a failed webhook delivery; each further one doubles, with jitter, up to PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS'],
  ['PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS', '600000', 'longest delay between two attempts of one webhook delivery (10 minutes; at least PULSEWIRE_WEBHOOK_BACKOFF_MS)'],
  ['PULSEWIRE_WEBHOOK_RETRY_FOR_MS', '86400000', "how long a webhook event is retried after it was queued (24 hours) before it goes to the endpoint's failed list (GET /v1/webhooks/:id/failed, replayable)"],
  ['PULSEWIRE_WEBHOOK_PAUSE_AFTER_MS', '259200000', 'a webhook endpoint whose every attempt failed for this long (3 days) is paused with the reason; POST /v1/webhooks/:id/resume starts it again'],
  ['PULSEWIRE_WEBHOOK_MAX_ENDPOINTS', '100', 'webhook endpoints the hub accepts (1 to 10000); more get HTTP 409'],
] as const;

export const SPOOL_SYNC_MODES = ['commit', 'flush'] as const;
export type SpoolSync = (typeof SPOOL_SYNC_MODES)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: Env = process.env): Config {
  const givenToken = envString(env, 'PULSEWIRE_OPERATOR_TOKEN', { minLength: 16 });
  const influxUrl = envUrl(env, 'PULSEWIRE_INFLUX_URL', ['http:', 'https:']);
  if (influxUrl !== undefined && new URL(influxUrl).pathname.replace(/^\/+/, '') === '') {
    throw configError('PULSEWIRE_INFLUX_URL', influxUrl, 'a URL whose path names the database, e.g. http://127.0.0.1:8086/pulsewire');
  }
  const enrollmentKeys = envList(env, 'PULSEWIRE_ENROLLMENT_KEY', { minLength: 16, hidden: true }) ?? [];
  const config: Config = {
    host: envString(env, 'PULSEWIRE_HOST') ?? '127.0.0.1',
    port: envInteger(env, 'PULSEWIRE_PORT', { min: 0, max: 65535 }) ?? 8080,
    dataDir: path.resolve(envString(env, 'PULSEWIRE_DATA_DIR') ?? './data'),
    influxUrl,
    enrollmentKey: enrollmentKeys[0],
    enrollmentKeys,
    operatorToken: givenToken ?? randomBytes(24).toString('base64url'),
    operatorTokenGenerated: givenToken === undefined,
    pingIntervalMs: envInteger(env, 'PULSEWIRE_PING_INTERVAL_MS', { min: 100, max: 3_600_000 }) ?? 25_000,
    maxMessageBytes: envInteger(env, 'PULSEWIRE_MAX_MESSAGE_BYTES', { min: 256, max: 16 * 1024 * 1024 }) ?? 65_536,
    permessageDeflate: envBoolean(env, 'PULSEWIRE_PERMESSAGE_DEFLATE') ?? false,
    maxRecordsPerPack: envInteger(env, 'PULSEWIRE_MAX_RECORDS', { min: 1, max: 100_000 }) ?? 1024,
    maxFutureSeconds: envInteger(env, 'PULSEWIRE_MAX_FUTURE_S', { min: 0, max: 10 * 365 * 86_400 }) ?? 300,
    maxPastSeconds: envInteger(env, 'PULSEWIRE_MAX_PAST_S', { min: 0, max: 100 * 365 * 86_400 }) ?? 30 * 86_400,
    maxNamesPerDevice: envInteger(env, 'PULSEWIRE_MAX_NAMES_PER_DEVICE', { min: 1, max: 1_000_000 }) ?? 1000,
    maxSeries: envInteger(env, 'PULSEWIRE_MAX_SERIES', { min: 1, max: 1_000_000_000 }) ?? 1_000_000,
    authMaxFailures: envInteger(env, 'PULSEWIRE_AUTH_MAX_FAILURES', { min: 1, max: 1_000_000 }) ?? 10,
    authBlockMs: envInteger(env, 'PULSEWIRE_AUTH_BLOCK_MS', { min: 0, max: 86_400_000 }) ?? 60_000,
    authMaxAddresses: envInteger(env, 'PULSEWIRE_AUTH_MAX_ADDRESSES', { min: 1, max: 10_000_000 }) ?? 100_000,
    deviceForgetMs: envInteger(env, 'PULSEWIRE_DEVICE_FORGET_MS', { min: 1000, max: 30 * 86_400_000 }) ?? 3_600_000,
    shutdownTimeoutMs: envInteger(env, 'PULSEWIRE_SHUTDOWN_TIMEOUT_MS', { min: 100, max: 600_000 }) ?? 10_000,
    writeBatchPoints: envInteger(env, 'PULSEWIRE_WRITE_BATCH_POINTS', { min: 1, max: 1_000_000 }) ?? 5000,
    writeConcurrency: envInteger(env, 'PULSEWIRE_WRITE_CONCURRENCY', { min: 1, max: 64 }) ?? 3,
    spoolMaxBytes: envInteger(env, 'PULSEWIRE_SPOOL_MAX_BYTES', { min: 1024, max: Number.MAX_SAFE_INTEGER }) ?? 1024 ** 3,
    spoolSync: envChoice(env, 'PULSEWIRE_SPOOL_SYNC', SPOOL_SYNC_MODES) ?? 'commit',
    deadLettersMax: envInteger(env, 'PULSEWIRE_DEAD_LETTERS_MAX', { min: 1, max: 10_000_000 }) ?? 10_000,
    commandQueueMax: envInteger(env, 'PULSEWIRE_COMMAND_QUEUE_MAX', { min: 1, max: 100_000 }) ?? 100,
    commandTtlMs: envInteger(env, 'PULSEWIRE_COMMAND_TTL_MS', { min: 1000, max: 30 * 86_400_000 }) ?? 3_600_000,
    commandTimeoutMs: envInteger(env, 'PULSEWIRE_COMMAND_TIMEOUT_MS', { min: 100, max: 86_400_000 }) ?? 30_000,
    commandRetentionMs: envInteger(env, 'PULSEWIRE_COMMAND_RETENTION_MS', { min: 60_000, max: 365 * 86_400_000 }) ?? 7 * 86_400_000,
    auditRetentionMs: envInteger(env, 'PULSEWIRE_AUDIT_RETENTION_MS', { min: 60_000, max: 3650 * 86_400_000 }) ?? 90 * 86_400_000,
    logLevel: envChoice(env, 'PULSEWIRE_LOG_LEVEL', LOG_LEVELS) ?? 'info',
    tls: loadTls(env),
    allowedOrigins: loadOrigins(env),
    liveConflateBytes: envInteger(env, 'PULSEWIRE_LIVE_CONFLATE_BYTES', { min: 1024, max: 1024 ** 3 }) ?? 1024 ** 2,
    liveMaxSeries: envInteger(env, 'PULSEWIRE_LIVE_MAX_SERIES', { min: 1, max: 100_000_000 }) ?? 200_000,
    liveMaxBufferedBytes: envInteger(env, 'PULSEWIRE_LIVE_MAX_BUFFERED_BYTES', { min: 2048, max: 4 * 1024 ** 3 }) ?? 16 * 1024 ** 2,
    httpDeviceRatePerS: envInteger(env, 'PULSEWIRE_HTTP_DEVICE_RATE', { min: 1, max: 10_000 }) ?? 5,
    maxDeviceConnections: loadAuto(env, 'PULSEWIRE_MAX_DEVICE_CONNECTIONS', { min: 1, max: 10_000_000 }),
    maxConnectionsPerAddress: envInteger(env, 'PULSEWIRE_MAX_CONNECTIONS_PER_ADDRESS', { min: 1, max: 10_000_000 }),
    maxHandshakes: envInteger(env, 'PULSEWIRE_MAX_HANDSHAKES', { min: 1, max: 1_000_000 }) ?? 1000,
    acceptRate: envInteger(env, 'PULSEWIRE_ACCEPT_RATE', { min: 1, max: 1_000_000 }) ?? 2000,
    admissionQueue: envInteger(env, 'PULSEWIRE_ADMISSION_QUEUE', { min: 0, max: 1_000_000 }) ?? 10_000,
    admissionWaitMs: envInteger(env, 'PULSEWIRE_ADMISSION_WAIT_MS', { min: 0, max: 60_000 }) ?? 5000,
    listenBacklog: envInteger(env, 'PULSEWIRE_LISTEN_BACKLOG', { min: 1, max: 65_535 }) ?? 4096,
    deviceMessageRate: envInteger(env, 'PULSEWIRE_DEVICE_MESSAGE_RATE', { min: 1, max: 1_000_000 }) ?? 1000,
    deviceReadingRate: envInteger(env, 'PULSEWIRE_DEVICE_READING_RATE', { min: 1, max: 100_000_000 }) ?? 10_000,
    handshakeTimeoutMs: envInteger(env, 'PULSEWIRE_HANDSHAKE_TIMEOUT_MS', { min: 100, max: 300_000 }) ?? 10_000,
    requestTimeoutMs: envInteger(env, 'PULSEWIRE_REQUEST_TIMEOUT_MS', { min: 100, max: 3_600_000 }) ?? 60_000,
    maxHeaderBytes: envInteger(env, 'PULSEWIRE_MAX_HEADER_BYTES', { min: 1024, max: 1024 * 1024 }) ?? 16_384,
    clusterName: loadClusterName(env),
    workers: loadWorkers(env),
    trustProxy: loadTrustProxy(env),
    nodeId: loadNodeId(env),
    nodeLeaseMs: envInteger(env, 'PULSEWIRE_NODE_LEASE_MS', { min: 300, max: 600_000 }) ?? 15_000,
    cluster: loadCluster(env),
    webhooks: loadWebhooks(env),
  };
  if (config.cluster && givenToken === undefined) {
    // A token generated per process would differ on every node: a login on one would fail on the next.
    throw configError('PULSEWIRE_OPERATOR_TOKEN', '', 'a token of at least 16 characters, the same on every node, when PULSEWIRE_NATS_URL is set');
  }
  if (config.requestTimeoutMs < config.handshakeTimeoutMs) {
    throw configError('PULSEWIRE_REQUEST_TIMEOUT_MS', String(config.requestTimeoutMs), `at least PULSEWIRE_HANDSHAKE_TIMEOUT_MS (${config.handshakeTimeoutMs}): the headers are part of the request`);
  }
  if (config.liveMaxBufferedBytes <= config.liveConflateBytes) {
    throw configError('PULSEWIRE_LIVE_MAX_BUFFERED_BYTES', String(config.liveMaxBufferedBytes), `more than PULSEWIRE_LIVE_CONFLATE_BYTES (${config.liveConflateBytes})`);
  }
  return Object.freeze(config);
}

function loadWebhooks(env: Env): WebhookConfig {
  const backoffMs = envInteger(env, 'PULSEWIRE_WEBHOOK_BACKOFF_MS', { min: 10, max: 3_600_000 }) ?? 1000;
  const backoffMaxMs = envInteger(env, 'PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS', { min: 10, max: 86_400_000 }) ?? 600_000;
  if (backoffMaxMs < backoffMs) {
    throw configError('PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS', String(backoffMaxMs), `at least PULSEWIRE_WEBHOOK_BACKOFF_MS (${backoffMs})`);
  }
  return Object.freeze({
    allowPrivate: envBoolean(env, 'PULSEWIRE_WEBHOOK_ALLOW_PRIVATE') ?? false,
    timeoutMs: envInteger(env, 'PULSEWIRE_WEBHOOK_TIMEOUT_MS', { min: 100, max: 120_000 }) ?? 10_000,
    backoffMs,
    backoffMaxMs,
    retryForMs: envInteger(env, 'PULSEWIRE_WEBHOOK_RETRY_FOR_MS', { min: 100, max: 30 * 86_400_000 }) ?? 86_400_000,
    pauseAfterMs: envInteger(env, 'PULSEWIRE_WEBHOOK_PAUSE_AFTER_MS', { min: 100, max: 365 * 86_400_000 }) ?? 3 * 86_400_000,
    maxEndpoints: envInteger(env, 'PULSEWIRE_WEBHOOK_MAX_ENDPOINTS', { min: 1, max: 10_000 }) ?? 100,
  });
}

/** A whole number in range, or `auto` (undefined: the caller works it out). */
function loadAuto(env: Env, name: string, range: { min: number; max: number }): number | undefined {
  const raw = envString(env, name);
  if (raw === undefined || raw.trim().toLowerCase() === 'auto') return undefined;
  if (!/^\s*\d+\s*$/.test(raw)) throw configError(name, raw, `auto, or a whole number from ${range.min} to ${range.max}`);
  return envInteger(env, name, range);
}

function loadClusterName(env: Env): string {
  const name = envString(env, 'PULSEWIRE_CLUSTER_NAME') ?? 'pulsewire';
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) throw configError('PULSEWIRE_CLUSTER_NAME', name, '1 to 32 characters of A-Z a-z 0-9 _ -');
  return name;
}

function loadWorkers(env: Env): number {
  const raw = envString(env, 'PULSEWIRE_WORKERS');
  if (raw === undefined) return 1;
  if (raw.trim().toLowerCase() === 'auto') return os.availableParallelism();
  const workers = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw configError('PULSEWIRE_WORKERS', raw, 'a whole number from 1 to 64, or auto (one per core)');
  return workers;
}

function loadTrustProxy(env: Env): string[] | undefined {
  const raw = envString(env, 'PULSEWIRE_TRUST_PROXY');
  if (raw === undefined) return undefined;
  const items = raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  for (const item of items) {
    const [address, bits, ...rest] = item.split('/');
    const family = isIP(address ?? '');
    const bitsOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (family === 0 || !bitsOk || rest.length > 0) {
      throw configError('PULSEWIRE_TRUST_PROXY', item, 'comma-separated IP addresses or CIDRs such as 127.0.0.1,10.0.0.0/8 (never "trust everyone": a client could then claim any address)');
    }
  }
  return items.length > 0 ? items : undefined;
}

function loadNodeId(env: Env): string {
  const raw = envString(env, 'PULSEWIRE_NODE_ID');
  if (raw === undefined) return `${os.hostname()}-${process.pid}`;
  if (!/^[\x21-\x7e]{1,64}$/.test(raw)) throw configError('PULSEWIRE_NODE_ID', raw, '1 to 64 printable ASCII characters without spaces');
  return raw;
}

function loadCluster(env: Env): ClusterConfig | undefined {
  const raw = envString(env, 'PULSEWIRE_NATS_URL');
  if (raw === undefined) {
    for (const name of ['PULSEWIRE_NATS_CREDS', 'PULSEWIRE_NATS_TLS_CA', 'PULSEWIRE_NATS_TLS_CERT', 'PULSEWIRE_NATS_TLS_KEY']) {
      const given = envString(env, name);
      if (given !== undefined) throw configError(name, given, 'only together with PULSEWIRE_NATS_URL');
    }
    return undefined;
  }
  const servers = raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  for (const server of servers) {
    let url: URL | undefined;
    try { url = new URL(server); } catch { /* reported below */ }
    if (!url || !['nats:', 'tls:', 'ws:', 'wss:'].includes(url.protocol) || url.hostname === '') {
      throw configError('PULSEWIRE_NATS_URL', server, 'comma-separated NATS URLs such as nats://127.0.0.1:4222 or tls://nats.example.com:4222');
    }
  }
  if (servers.length === 0) throw configError('PULSEWIRE_NATS_URL', raw, 'at least one NATS URL');
  const name = loadClusterName(env);
  const credsFile = envString(env, 'PULSEWIRE_NATS_CREDS');
  if (credsFile !== undefined) readPem('PULSEWIRE_NATS_CREDS', credsFile);
  const caPath = envString(env, 'PULSEWIRE_NATS_TLS_CA');
  const certPath = envString(env, 'PULSEWIRE_NATS_TLS_CERT');
  const keyPath = envString(env, 'PULSEWIRE_NATS_TLS_KEY');
  if ((certPath === undefined) !== (keyPath === undefined)) {
    const missing = certPath === undefined ? 'PULSEWIRE_NATS_TLS_CERT' : 'PULSEWIRE_NATS_TLS_KEY';
    throw configError(missing, '', 'a PEM file path (its pair is set)');
  }
  const tls = caPath === undefined && certPath === undefined ? undefined : Object.freeze({
    ca: caPath === undefined ? undefined : readPem('PULSEWIRE_NATS_TLS_CA', caPath),
    cert: certPath === undefined ? undefined : readPem('PULSEWIRE_NATS_TLS_CERT', certPath),
    key: keyPath === undefined ? undefined : readPem('PULSEWIRE_NATS_TLS_KEY', keyPath),
  });
  return Object.freeze({
    servers: Object.freeze(servers),
    name,
    replicas: envInteger(env, 'PULSEWIRE_NATS_REPLICAS', { min: 1, max: 5 }) ?? 1,
    credsFile,
    tls,
  });
}

function loadOrigins(env: Env): string[] | undefined {
  const raw = envString(env, 'PULSEWIRE_ALLOWED_ORIGINS');
  if (raw === undefined) return undefined;
  return raw.split(',').map((item) => item.trim()).filter((item) => item !== '').map((item) => {
    let url: URL | undefined;
    try { url = new URL(item); } catch { /* reported below */ }
    // An origin is scheme://host[:port] and nothing else; anything more would never match a browser's Origin header.
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.origin !== item.replace(/\/$/, '').toLowerCase()) {
      throw configError('PULSEWIRE_ALLOWED_ORIGINS', item, 'comma-separated origins such as https://ops.example.com:8443 (scheme, host, port; no path)');
    }
    return url.origin;
  });
}

function loadTls(env: Env): TlsConfig | undefined {
  const certPath = envString(env, 'PULSEWIRE_TLS_CERT');
  const keyPath = envString(env, 'PULSEWIRE_TLS_KEY');
  const caPath = envString(env, 'PULSEWIRE_TLS_CA');
  if (certPath === undefined && keyPath === undefined) {
    if (caPath !== undefined) throw configError('PULSEWIRE_TLS_CA', caPath, 'only together with PULSEWIRE_TLS_CERT and PULSEWIRE_TLS_KEY');
    return undefined;
  }
  if (certPath === undefined) throw configError('PULSEWIRE_TLS_CERT', '', 'a PEM file path (PULSEWIRE_TLS_KEY is set)');
  if (keyPath === undefined) throw configError('PULSEWIRE_TLS_KEY', '', 'a PEM file path (PULSEWIRE_TLS_CERT is set)');
  return Object.freeze({
    cert: readPem('PULSEWIRE_TLS_CERT', certPath),
    key: readPem('PULSEWIRE_TLS_KEY', keyPath),
    ca: caPath === undefined ? undefined : readPem('PULSEWIRE_TLS_CA', caPath),
  });
}

function readPem(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw configError(variable, file, `a readable PEM file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}

function envChoice<T extends string>(env: Env, name: string, allowed: readonly T[]): T | undefined {
  const raw = envString(env, name);
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) throw configError(name, raw, `one of ${allowed.join(', ')}`);
  return raw as T;
}
