/**
 * A cluster as an operator runs one: real hub processes (src/main.ts), each
 * with its own data dir (its spool), sharing one nats-server (JetStream), one
 * InfluxDB database, one operator token and enrollment key. Each node listens
 * on port 0 and says where in its banner; a restarted node gets a new port
 * (the load balancer in front is told, test/support/nginx.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { ENROLLMENT_KEY, operatorRequest } from './hub.js';
import { startHubProcess, type HubProcess } from './hub-process.js';
import { freshDatabase, type FreshDatabase } from './influx.js';
import { uniqueNamespace } from './nats.js';

export type ClusterNodeProcess = {
  readonly id: string;
  readonly dataDir: string;
  /** The running process; replaced by restart(). */
  hub: HubProcess;
  api(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** kill -9 (default) or another signal; resolves with the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts the node again on its data dir (a new port). */
  restart(): Promise<void>;
};

export type TestCluster = {
  readonly name: string;
  readonly database: FreshDatabase;
  readonly nodes: ClusterNodeProcess[];
  close(): Promise<void>;
};

export type ClusterOptions = {
  nodes: number;
  natsUrl?: string;
  /** Extra environment for every node (shorter ping interval, lease...). */
  env?: Record<string, string>;
  /** Extra environment for one node (by id: node-a, node-b, ...). */
  nodeEnv?: (id: string, database: FreshDatabase) => Record<string, string>;
};

/** Short lease and ping interval, so loss and takeover happen in seconds; both are ordinary settings. */
export const FAST_CLUSTER_ENV = { PULSEWIRE_NODE_LEASE_MS: '1500', PULSEWIRE_PING_INTERVAL_MS: '1000', PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '8000' };

export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  const name = uniqueNamespace('k');
  const database = await freshDatabase('cluster');
  const natsUrl = options.natsUrl ?? inject('natsUrl');
  const nodes: ClusterNodeProcess[] = [];
  const started = await Promise.all(Array.from({ length: options.nodes }, async (_, i) => {
    const id = `node-${String.fromCharCode(97 + i)}`;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), `pulsewire-${id}-`));
    const env = {
      PULSEWIRE_NATS_URL: natsUrl,
      PULSEWIRE_CLUSTER_NAME: name,
      PULSEWIRE_NODE_ID: id,
      PULSEWIRE_INFLUX_URL: database.url,
      PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY,
      ...FAST_CLUSTER_ENV,
      ...options.env,
      ...options.nodeEnv?.(id, database),
    };
    return nodeProcess(id, dataDir, env);
  }));
  nodes.push(...started);
  return {
    name,
    database,
    nodes,
    async close() {
      await Promise.all(nodes.map((node) => node.kill('SIGTERM').catch(() => undefined)));
      await Promise.all(nodes.map((node) => rm(node.dataDir, { recursive: true, force: true })));
      await database.drop().catch(() => undefined);
    },
  };
}

async function nodeProcess(id: string, dataDir: string, env: Record<string, string>): Promise<ClusterNodeProcess> {
  const node: ClusterNodeProcess = {
    id,
    dataDir,
    hub: await startHubProcess({ dataDir, env }),
    api: (method, route, body) => operatorRequest(node.hub.baseUrl, method, route, body),
    kill: (signal = 'SIGKILL') => node.hub.kill(signal),
    async restart() {
      node.hub = await startHubProcess({ dataDir, env });
    },
  };
  return node;
}
