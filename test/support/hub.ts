/**
 * Starts a real hub for a test: its own temp data dir, its own database in
 * the suite's influxd, listening on a free loopback port.
 *
 * An ACK means "in the hub's spool"; the drainer writes to InfluxDB a moment
 * later. So `db.query` first waits (bounded) until the spool is empty: a test
 * that reads InfluxDB right after an ACK sees what the ACK promised.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildOptions } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { freshDatabase } from './influx.js';

export const OPERATOR_TOKEN = 'test-operator-token-0123456789';
export const ENROLLMENT_KEY = 'test-enrollment-key-0123456789';

const SPOOL_DRAIN_WAIT_MS = 10_000;

/** Resolves when the hub's spool is empty, or after `timeoutMs` (a test of an outage may never drain). */
export async function spoolDrained(app: FastifyInstance, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (app.spool.stats.entries > 0) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

export type TestHub = {
  app: FastifyInstance;
  config: Config;
  /** http://127.0.0.1:PORT */
  baseUrl: string;
  /** ws://127.0.0.1:PORT/v1/device */
  deviceUrl: string;
  db: Awaited<ReturnType<typeof freshDatabase>>;
  api(method: string, route: string, body?: unknown, token?: string): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
};

export async function startHub(
  env: Record<string, string> = {},
  opts: Partial<BuildOptions> & { dataDir?: string; database?: Awaited<ReturnType<typeof freshDatabase>> } = {},
): Promise<TestHub> {
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'pulsewire-hub-')));
  const rawDb = opts.database ?? (await freshDatabase('hub'));
  const config = loadConfig({
    PULSEWIRE_HOST: '127.0.0.1',
    PULSEWIRE_PORT: '0',
    PULSEWIRE_DATA_DIR: dataDir,
    PULSEWIRE_OPERATOR_TOKEN: OPERATOR_TOKEN,
    PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY,
    PULSEWIRE_LOG_LEVEL: process.env.PULSEWIRE_TEST_LOG ?? 'silent',
    ...env,
  });
  const app = await buildApp(config, { influxUrl: rawDb.url, ...opts });
  const db: typeof rawDb = {
    ...rawDb,
    async query(influxql) {
      await spoolDrained(app, SPOOL_DRAIN_WAIT_MS);
      return rawDb.query(influxql);
    },
  };
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const baseUrl = address.replace('localhost', '127.0.0.1');
  const url = new URL(baseUrl);
  const scheme = url.protocol === 'https:' ? 'wss' : 'ws';
  let closed = false;
  return {
    app,
    config,
    baseUrl,
    deviceUrl: `${scheme}://${url.host}/v1/device`,
    db,
    async api(method, route, body, token = OPERATOR_TOKEN) {
      if (scheme === 'wss') {
        // fetch cannot be given the test CA; inject still goes through every hook and route.
        const res = await app.inject({ method: method as 'GET', url: route, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { payload: body as object }) });
        let injected: unknown = res.body;
        try { injected = res.body ? JSON.parse(res.body) : undefined; } catch { /* plain text */ }
        return { status: res.statusCode, body: injected, headers: new Headers(res.headers as Record<string, string>) };
      }
      return operatorRequest(baseUrl, method, route, body, token);
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** One operator API call over HTTP with the bearer token; the body parsed as JSON when it is JSON. */
export async function operatorRequest(baseUrl: string, method: string, route: string, body?: unknown, token = OPERATOR_TOKEN): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* plain text */ }
  return { status: res.status, body: parsed, headers: res.headers };
}

/**
 * One hub across restarts: every `start()` is a new hub process-equivalent on
 * the same data dir and database. `close()` closes whichever are still open
 * (closing twice is harmless) and removes the data dir.
 */
export async function restartableHub(name: string): Promise<{ dataDir: string; start(env?: Record<string, string>, opts?: Partial<BuildOptions>): Promise<TestHub>; close(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `pulsewire-${name}-`));
  const database = await freshDatabase(name);
  const hubs: TestHub[] = [];
  return {
    dataDir,
    async start(env = {}, opts = {}) {
      const hub = await startHub(env, { ...opts, dataDir, database });
      hubs.push(hub);
      return hub;
    },
    async close() {
      for (const hub of hubs.reverse()) await hub.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
