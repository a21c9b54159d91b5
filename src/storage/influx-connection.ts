/**
 * Turns PULSEWIRE_INFLUX_URL (http://user:pass@host:8086/database) into a
 * node-influx client bound to that database.
 */

import { InfluxDB } from 'influx';
import type { IBackoffStrategy } from 'influx/lib/src/backoff/backoff.js';
import { PulsewireError } from '../errors/catalog.js';
import { classifyInfluxError } from './influx-errors.js';
import { queryStreamer, type StreamQuery } from './influx-query-stream.js';
import { lineWriter, type LineWrite } from './influx-write.js';

export const DATABASE_NAME = /^[A-Za-z0-9_-]+$/;

export type InfluxConnection = {
  readonly influx: InfluxDB;
  readonly database: string;
  /** POST /write of line protocol already written, microsecond precision (influx-write.ts). */
  readonly writeLines: LineWrite;
  /** A query whose answer is read as it streams in, a socket read at a time (influx-query-stream.ts). */
  readonly queryStream: StreamQuery;
  /** The URL with any password replaced by ***, safe to log. */
  readonly safeUrl: string;
  /** True when InfluxDB answered /ping within timeoutMs; never throws. */
  ping(timeoutMs?: number): Promise<boolean>;
  /** CREATE DATABASE, which InfluxDB 1.x treats as "if not exists". */
  ensureDatabase(): Promise<void>;
};

export type ConnectOptions = {
  /** Per HTTP request; a write that hangs longer counts as a failure and is retried by the writer. */
  requestTimeoutMs?: number;
};

/**
 * node-influx takes a host out of its pool after a network error and answers
 * "No host available" until a backoff passes, and retries requests itself.
 * The writer owns retries and backoff, so both are switched off here: a
 * delay of 0 keeps the single host in the pool.
 */
const NO_BACKOFF: IBackoffStrategy = {
  getDelay: () => 0,
  next: () => NO_BACKOFF,
  reset: () => NO_BACKOFF,
};

function configError(detail: string): PulsewireError {
  return new PulsewireError('PW_ERR_CONFIG', `InfluxDB URL: ${detail}`);
}

export function parseInfluxUrl(text: string): { protocol: 'http' | 'https'; host: string; port: number; database: string; username?: string; password?: string; safeUrl: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw configError(`not a URL: ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(`use http:// or https://, not ${url.protocol}//`);
  const database = decodeURIComponent(url.pathname.replace(/^\/|\/$/g, ''));
  if (!database) throw configError('name the database as the path, e.g. http://127.0.0.1:8086/pulsewire');
  if (!DATABASE_NAME.test(database)) throw configError(`database name ${JSON.stringify(database)} must match [A-Za-z0-9_-]+`);
  const protocol = url.protocol === 'https:' ? 'https' : 'http';
  const port = url.port ? Number(url.port) : protocol === 'https' ? 443 : 80;
  const safe = new URL(url.href);
  if (safe.password) safe.password = '***';
  return {
    protocol,
    // URL keeps IPv6 literals bracketed; http.request wants them bare.
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port,
    database,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    safeUrl: safe.href,
  };
}

export function connectInflux(url: string, options: ConnectOptions = {}): InfluxConnection {
  const { protocol, host, port, database, username, password, safeUrl } = parseInfluxUrl(url);
  const influx = new InfluxDB({
    protocol,
    host,
    port,
    database,
    ...(username !== undefined ? { username, password: password ?? '' } : {}),
    pool: { maxRetries: 0, requestTimeout: options.requestTimeoutMs ?? 10_000, backoff: NO_BACKOFF },
  });
  const target = { protocol, host, port, database, ...(username !== undefined ? { username, password: password ?? '' } : {}) };
  return {
    influx,
    database,
    writeLines: lineWriter(target, options.requestTimeoutMs ?? 10_000),
    queryStream: queryStreamer(target, options.requestTimeoutMs ?? 10_000),
    safeUrl,
    async ping(timeoutMs = 2000) {
      try {
        const hosts = await influx.ping(timeoutMs);
        return hosts.some((h) => h.online);
      } catch {
        return false;
      }
    },
    async ensureDatabase() {
      try {
        await influx.createDatabase(database);
      } catch (err) {
        const failure = classifyInfluxError(err);
        throw new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', `cannot create database ${database} at ${safeUrl}: ${failure.detail}`, { cause: err });
      }
    },
  };
}
