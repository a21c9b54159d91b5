/**
 * Two hub nodes in this process, one cluster through the suite's real
 * nats-server (JetStream) and one InfluxDB database, each with its own data
 * dir: the quick way to try a behaviour across nodes (the same over real
 * processes: cluster.ts).
 */
import { inject } from 'vitest';
import { freshDatabase } from './influx.js';
import { startHub, type TestHub } from './hub.js';
import { uniqueNamespace } from './nats.js';

/**
 * Starts node-a then node-b, each pushed to `hubs` as soon as it is up (the
 * caller closes them, also when the second failed to start).
 */
export async function startTwoNodes(hubs: TestHub[], name: string, extraEnv: Record<string, string> = {}): Promise<[TestHub, TestHub]> {
  const cluster = uniqueNamespace(name);
  const database = await freshDatabase(`cluster-${name}`);
  const env = (node: string) => clusterNodeEnv(cluster, node, extraEnv);
  const a = await startHub(env('node-a'), { database });
  hubs.push(a);
  const b = await startHub(env('node-b'), { database });
  hubs.push(b);
  return [a, b];
}

/** A hub's environment as node `node` of `cluster` on the suite's nats-server (a short node lease, for quick tests). */
export function clusterNodeEnv(cluster: string, node: string, extraEnv: Record<string, string> = {}): Record<string, string> {
  return { PULSEWIRE_NATS_URL: inject('natsUrl'), PULSEWIRE_CLUSTER_NAME: cluster, PULSEWIRE_NODE_ID: node, PULSEWIRE_NODE_LEASE_MS: '1500', ...extraEnv };
}
