/**
 * Every NATS name the hub uses: key-value bucket names, the keys inside them
 * and the subjects it publishes on. Nothing else builds a subject or a key by
 * hand, so the escaping of ids happens in exactly one place.
 *
 * Ids are escaped token by token. A device id may hold '.', which NATS reads
 * as a token separator, and a node id may hold anything printable (spaces,
 * '*', '>', non-ASCII), none of which a KV key or a subject token may carry.
 * `encodeToken` keeps [A-Za-z0-9_-] as they are and writes every other UTF-8
 * byte as `=XX` (upper-case hex); '=' itself is escaped too, so decoding is
 * exact. The result is still readable with the nats CLI (`dev=2E1` is
 * `dev.1`), and two ids never share an encoding.
 */
import type { BucketKey } from '../stores/bucket.js';

/** What every bucket and subject of one deployment starts with; tests use their own. */
export const DEFAULT_NAMESPACE = 'pulsewire';

/** The shared stores (stores/stores.ts), one JetStream key-value bucket each. */
export const STORE_BUCKETS = {
  devices: 'devices',
  deviceStatus: 'device-status',
  commands: 'commands',
  commandsDone: 'commands-done',
  desired: 'desired-state',
  reported: 'reported-state',
  desiredVersions: 'desired-versions',
  jobs: 'jobs',
  jobTargets: 'job-targets',
  jobDispatch: 'job-dispatch',
  revokedSessions: 'revoked-sessions',
  apiKeys: 'api-keys',
  audit: 'audit',
  alertRules: 'alert-rules',
  alerts: 'alerts',
  leases: 'leases',
  nodes: 'nodes',
  windows: 'duplicate-windows',
  webhooks: 'webhooks',
  webhookOutbox: 'webhook-outbox',
  webhookFailed: 'webhook-failed',
} as const;

export type StoreName = keyof typeof STORE_BUCKETS;

const PLAIN = /^[A-Za-z0-9_-]$/;
const TOKEN = /^(?:[A-Za-z0-9_-]|=[0-9A-F]{2})+$/;
const NAMESPACE = /^[A-Za-z0-9_-]{1,32}$/;
/** An empty id still needs a token; '=' alone is never the output of a non-empty id. */
const EMPTY_TOKEN = '=';

/** One id as one KV key token or subject token (see the header). */
export function encodeToken(id: string): string {
  if (id === '') return EMPTY_TOKEN;
  let out = '';
  for (const char of id) {
    if (PLAIN.test(char)) {
      out += char;
      continue;
    }
    for (const byte of Buffer.from(char, 'utf8')) out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The inverse of encodeToken. Throws on a token it could not have written
 * (bad escapes, `=41` for a plain 'A', broken UTF-8): such a key in a bucket
 * was not written by Pulsewire.
 */
export function decodeToken(token: string): string {
  if (token === EMPTY_TOKEN) return '';
  if (!TOKEN.test(token)) throw new Error(`not an encoded NATS token: ${JSON.stringify(token)}`);
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '=') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  const id = Buffer.from(bytes).toString('utf8');
  if (encodeToken(id) !== token) throw new Error(`not an encoded NATS token: ${JSON.stringify(token)}`);
  return id;
}

/** A bucket key as a KV key: a string is one token, a pair is `enc(a).enc(b)`. */
export function encodeKey(key: BucketKey): string {
  return typeof key === 'string' ? encodeToken(key) : `${encodeToken(key[0])}.${encodeToken(key[1])}`;
}

/** The inverse of encodeKey: one token is a string key, two are a pair. */
export function decodeKey(kvKey: string): BucketKey {
  const tokens = kvKey.split('.');
  if (tokens.length === 1) return decodeToken(tokens[0]!);
  if (tokens.length === 2) return [decodeToken(tokens[0]!), decodeToken(tokens[1]!)];
  throw new Error(`not a Pulsewire bucket key: ${JSON.stringify(kvKey)}`);
}

/** KV key filters: every string key is one token and every pair two, so NATS wildcards tell them apart. */
export const KEY_FILTERS = {
  all: '>',
  strings: '*',
  pairs: '*.*',
  group: (first: string): string => `${encodeToken(first)}.*`,
} as const;

function checkNamespace(namespace: string): string {
  if (!NAMESPACE.test(namespace)) throw new Error(`NATS namespace must match ${NAMESPACE}: ${JSON.stringify(namespace)}`);
  return namespace;
}

/** The JetStream bucket of a store: `pulsewire-devices` (bucket names allow [A-Za-z0-9_-]). */
export function bucketName(store: StoreName, namespace = DEFAULT_NAMESPACE): string {
  return `${checkNamespace(namespace)}-${STORE_BUCKETS[store]}`;
}

/** Subjects outside JetStream (core NATS, nothing stored). */
export const SUBJECTS = {
  /** One device's live readings: a dashboard watching one device subscribes to exactly this. */
  live: (deviceId: string, namespace = DEFAULT_NAMESPACE): string => `${checkNamespace(namespace)}.live.${encodeToken(deviceId)}`,
  /** Every device's live readings (a dashboard on the whole fleet). */
  liveAll: (namespace = DEFAULT_NAMESPACE): string => `${checkNamespace(namespace)}.live.*`,
  /** The bus events every node observes, by event type (`device.online`, ...: one token each). */
  event: (type: string, namespace = DEFAULT_NAMESPACE): string => `${checkNamespace(namespace)}.events.${encodeToken(type)}`,
  eventsAll: (namespace = DEFAULT_NAMESPACE): string => `${checkNamespace(namespace)}.events.*`,
  /** A dashboard's snapshot asks every node for its latest readings (live-peers.ts). */
  snapshot: (namespace = DEFAULT_NAMESPACE): string => `${checkNamespace(namespace)}.snapshot`,
  /** Requests to one node (kick, replace a device session it holds). */
  node: (nodeId: string, namespace = DEFAULT_NAMESPACE): string => `${checkNamespace(namespace)}.node.${encodeToken(nodeId)}`,
} as const;

/** The first token of a subject after its namespace and kind, decoded: the device of a live subject. */
export function subjectId(subject: string): string {
  const token = subject.split('.')[2];
  if (token === undefined) throw new Error(`no id in subject ${JSON.stringify(subject)}`);
  return decodeToken(token);
}
